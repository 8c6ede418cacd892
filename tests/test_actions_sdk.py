"""botyard.actions, the SDK for a tenant's actions, against plain nats-py peers on a real
nats-server: what botyard's node sends (docs/actions.md) is written here by hand."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import threading
import time
from pathlib import Path

import nats
import pytest

from botyard.actions import ActionError, ActionServer, Call, Result

TENANT = "acme-shop"
JSON = {"Content-Type": "application/json"}
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "shop_actions.py"


def run(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def request(action: str, key: str, **fields) -> bytes:
    body = {
        "action": action, "idempotency_key": key, "attempt": 1, "tenant": TENANT, "bot": "support", "conversation_id": "c-1",
        "turn": 3, "turn_id": "t-3", "intent": "order_status", "confidence": 0.93, "entities": [], "slots": {},
        "text": "where is my order", "form": None, "sent_at": time.time(), **fields,
    }
    return json.dumps(body).encode()


async def ask(nc, bot: str, action: str, key: str = "c-1:3:0", **fields) -> dict:
    msg = await nc.request(f"botyard.action.{TENANT}.{bot}.{action}", request(action, key, bot=bot, **fields), timeout=5,
                           headers={**JSON, "Botyard-Idempotency-Key": key})
    assert msg.headers and msg.headers.get("Content-Type") == "application/json"
    return json.loads(msg.data)


def test_a_plain_request_gets_the_handlers_reply(nats_url):
    seen: list[Call] = []

    async def go():
        server = ActionServer(TENANT, "plain", servers=nats_url, queue="botyard-actions")

        @server.action("look_up_order")
        async def look_up_order(call):
            seen.append(call)
            return {"text": f"Order {call.value('order_number')} has shipped.", "slots": {"shipped": True}}

        nc = await nats.connect(nats_url)
        try:
            async with server:
                entities = [{"entity": "order_number", "value": "4821377", "start": 5, "end": 12}]
                by_entity = await ask(nc, "plain", "look_up_order", entities=entities)
                by_slot = await ask(nc, "plain", "look_up_order", key="c-1:4:0", slots={"order_number": "5550123"}, attempt=2)
                refused = await nc.request(f"botyard.action.{TENANT}.plain.look_up_order", b"{not json", timeout=5)
        finally:
            await nc.close()
        return by_entity, by_slot, json.loads(refused.data)

    by_entity, by_slot, refused = run(go())
    assert by_entity == {"text": "Order 4821377 has shipped.", "slots": {"shipped": True}}
    assert by_slot["text"] == "Order 5550123 has shipped."
    assert refused["error"]["code"] == "malformed"
    first, second = seen
    assert (first.action, first.idempotency_key, first.conversation_id, first.turn, first.intent) == (
        "look_up_order", "c-1:3:0", "c-1", 3, "order_status")
    assert (second.attempt, second.slots, second.bot) == (2, {"order_number": "5550123"}, "plain")


def test_a_handler_exception_is_action_failed_and_serving_goes_on(nats_url):
    async def go():
        server = ActionServer(TENANT, "failing", servers=nats_url)

        @server.action("fragile")
        async def fragile(call):
            if call.slots.get("boom"):
                raise RuntimeError("the order database is down")
            return {"text": "fine"}

        nc = await nats.connect(nats_url)
        try:
            async with server:
                failed = await ask(nc, "failing", "fragile", key="k-1", slots={"boom": True})
                fine = await ask(nc, "failing", "fragile", key="k-2")
                again = await ask(nc, "failing", "fragile", key="k-1")  # an exception is not remembered: runs again
        finally:
            await nc.close()
        return failed, fine, again

    failed, fine, again = run(go())
    assert failed == {"error": {"code": "action_failed", "message": "the order database is down"}}
    assert fine == {"text": "fine"} and again == {"text": "fine"}


@pytest.mark.parametrize("result, problem", [
    ({"text": 5}, "'text' must be a string"),
    ({"txt": "typo"}, "unknown fields ['txt']"),
    ({"followup": "not an action!"}, "is not an action name"),
    ({"text": "x" * 5000}, "the limit is 4096"),
    ({"slots": {"when": float("nan")}}, "not finite"),
    ({"slots": {"at": object()}}, "not JSON serializable"),
    (42, "not int"),
])
def test_an_invalid_result_is_invalid_reply(nats_url, result, problem):
    async def go():
        server = ActionServer(TENANT, "invalid", servers=nats_url)
        server.action("sloppy")(lambda call: result)
        nc = await nats.connect(nats_url)
        try:
            async with server:
                return await ask(nc, "invalid", "sloppy")
        finally:
            await nc.close()

    reply = run(go())
    assert reply["error"]["code"] == "invalid_reply"
    assert problem in reply["error"]["message"]


def test_the_same_key_runs_the_handler_once(nats_url):
    runs: list[str] = []

    async def go(remember: int):
        server = ActionServer(TENANT, "dedupe", servers=nats_url, remember=remember)

        @server.action("create_return")
        async def create_return(call):
            runs.append(call.idempotency_key)
            await asyncio.sleep(0.3)
            return {"text": f"return R-{len(runs)}", "later": True}

        nc = await nats.connect(nats_url)
        try:
            async with server:
                # a retry while the first try still runs waits for its reply; one after it gets it remembered
                together = await asyncio.gather(ask(nc, "dedupe", "create_return", key="c-1:3:0"),
                                                ask(nc, "dedupe", "create_return", key="c-1:3:0", attempt=2))
                after = await ask(nc, "dedupe", "create_return", key="c-1:3:0", attempt=3)
                other = await ask(nc, "dedupe", "create_return", key="c-1:4:0")
                # the key again on another turn (turn 3 was never recorded; the next turn has its number): runs
                reused = await ask(nc, "dedupe", "create_return", key="c-1:3:0", turn_id="t-new", text="return the tent")
        finally:
            await nc.close()
        return [*together, after, other, reused]

    replies = run(go(remember=1024))
    assert runs == ["c-1:3:0", "c-1:4:0", "c-1:3:0"]
    assert [r["text"] for r in replies] == ["return R-1"] * 3 + ["return R-2", "return R-3"]
    runs.clear()
    replies = run(go(remember=0))  # off: every try runs
    assert runs == ["c-1:3:0"] * 3 + ["c-1:4:0", "c-1:3:0"]


def test_two_servers_in_one_queue_group_share_calls(nats_url):
    served = {"a": [], "b": []}

    def make(name: str) -> ActionServer:
        server = ActionServer(TENANT, "shared", servers=nats_url, queue="botyard-actions")

        @server.action("check_stock")
        async def check_stock(call):
            served[name].append(call.idempotency_key)
            return {"text": name}

        return server

    async def go():
        nc = await nats.connect(nats_url)
        try:
            async with make("a"), make("b"):
                return [await ask(nc, "shared", "check_stock", key=f"c-{i}:1:0") for i in range(60)]
        finally:
            await nc.close()

    replies = run(go())
    assert len(served["a"]) + len(served["b"]) == 60  # each call reached exactly one of them
    assert served["a"] and served["b"]
    assert sorted(served["a"] + served["b"]) == sorted(f"c-{i}:1:0" for i in range(60))
    assert {r["text"] for r in replies} == {"a", "b"}


def test_sync_and_async_handlers(nats_url):
    threads = {}

    async def go():
        server = ActionServer(TENANT, "kinds", servers=nats_url)

        @server.action("sync_result")
        def sync_result(call):
            threads["sync"] = threading.current_thread()
            return Result(text="from a thread", slots={"stock": 3}, clear=("product",), handoff="")

        @server.action("sync_text")
        def sync_text(call):
            return "just text"

        @server.action("async_none")
        async def async_none(call):
            threads["async"] = threading.current_thread()

        nc = await nats.connect(nats_url)
        try:
            async with server:
                return [await ask(nc, "kinds", name) for name in ("sync_result", "sync_text", "async_none")]
        finally:
            await nc.close()

    assert run(go()) == [{"text": "from a thread", "slots": {"stock": 3}, "clear": ["product"]}, {"text": "just text"}, {}]
    assert threads["sync"] is not threading.main_thread()  # a plain function does not block the loop
    assert threads["async"] is threading.main_thread()


def test_send_message_returns_the_seq(nats_url):
    got = []

    async def go():
        nc = await nats.connect(nats_url)
        server = ActionServer(TENANT, "messages", nc=nc)
        server.action("noop")(lambda call: None)

        async def node(msg):  # what botyard's node answers on botyard.message.<tenant>.<bot>
            body = json.loads(msg.data)
            got.append((body, msg.headers))
            if body["text"] == "refuse":
                reply = {"error": {"code": "text_too_long", "message": "too long", "limit": 4096}}
            else:
                reply = {"conversation_id": body["conversation_id"], "message_id": body.get("message_id"), "seq": 1,
                         "recorded": True, "subject": "botyard.out.acme-shop.messages.c-1"}
            await msg.respond(json.dumps(reply).encode())

        try:
            async with server:
                with pytest.raises(ActionError) as nobody:
                    await server.send_message("c-1", "anyone?")
                sub = await nc.subscribe(f"botyard.message.{TENANT}.messages", cb=node)
                seq = await server.send_message("c-1", "Your label is ready", message_id="c-1:3:0:label", source="returns")
                with pytest.raises(ActionError) as refused:
                    await server.send_message("c-1", "refuse")
                await sub.unsubscribe()
            assert not nc.is_closed  # a connection given to the server stays the caller's
        finally:
            await nc.close()
        return seq, nobody.value, refused.value

    seq, nobody, refused = run(go())
    assert seq == 1
    assert nobody.code == "no_responders"
    assert (refused.code, refused.fields) == ("text_too_long", {"limit": 4096})
    body, headers = got[0]
    assert body == {"conversation_id": "c-1", "text": "Your label is ready", "message_id": "c-1:3:0:label", "source": "returns"}
    assert headers["Content-Type"] == "application/json"


def test_the_example_actions(nats_url):
    spec = importlib.util.spec_from_file_location("shop_actions_under_test", EXAMPLE)
    shop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shop)
    messages = []

    async def go():
        nc = await nats.connect(nats_url)
        arrived = asyncio.Event()

        async def node(msg):
            messages.append(json.loads(msg.data))
            await msg.respond(json.dumps({"seq": len(messages)}).encode())
            if len(messages) == 2:
                arrived.set()

        await nc.subscribe(f"botyard.message.{TENANT}.example", cb=node)
        server = shop.build(nats_url, TENANT, "example", ship_after=0.1, label_after=0.1)
        try:
            async with server:
                packed = await ask(nc, "example", "look_up_order", slots={"order_number": "4821377"})
                unknown = await ask(nc, "example", "look_up_order", key="c-1:4:0", slots={"order_number": "1234567"})
                slots = {"order_number": "7310042", "item": "tent", "reason": "too small"}
                returned = await ask(nc, "example", "create_return", key="c-1:5:0", slots=slots)
                wrong_item = await ask(nc, "example", "create_return", key="c-1:6:0", slots={**slots, "item": "hiking boots"})
                product = [{"entity": "product", "value": "hiking boots", "start": 0, "end": 5}]
                stock = await ask(nc, "example", "check_stock", key="c-1:7:0", entities=product)
                await asyncio.wait_for(arrived.wait(), 5)
                shipped = await ask(nc, "example", "look_up_order", key="c-1:8:0", slots={"order_number": "4821377"})
        finally:
            await nc.close()
        return packed, unknown, returned, wrong_item, stock, shipped

    packed, unknown, returned, wrong_item, stock, shipped = run(go())
    assert "4821377" in packed["text"] and "being packed" in packed["text"]
    assert unknown["clear"] == ["order_number"] and "can't find an order 1234567" in unknown["text"]
    number = returned["slots"]["return_number"]
    assert re.fullmatch(r"R-\d{6}", number) and returned["later"] is True
    assert returned["text"].startswith(f"I've registered your return {number}") and "when the label is ready" in returned["text"]
    assert wrong_item == {"text": "Order 7310042 has no hiking boots: it has rain jacket and tent."}
    assert "out of stock" in stock["text"]
    assert "shipped on" in shipped["text"]
    by_id = {m["message_id"]: m for m in messages}
    assert by_id["order-4821377-shipped"]["text"] == "Good news: your order 4821377 has shipped. It should reach you in 2 working days."
    assert by_id["c-1:5:0:label"]["text"].startswith(f"Your return label for {number} is ready: ")
    assert {m["conversation_id"] for m in messages} == {"c-1"}


def test_stop_lets_a_running_call_answer_and_cancels_background_tasks(nats_url):
    async def go():
        server = ActionServer(TENANT, "stopping", servers=nats_url, grace=5.0)
        gone = asyncio.Event()

        async def forever():
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                gone.set()
                raise

        @server.action("slow")
        async def slow(call):
            server.spawn(forever())
            await asyncio.sleep(0.5)
            return {"text": "done"}

        nc = await nats.connect(nats_url)
        try:
            await server.start()
            pending = asyncio.ensure_future(ask(nc, "stopping", "slow"))
            await asyncio.sleep(0.2)  # the call is running
            await server.stop()
            reply = await pending
            with pytest.raises(nats.errors.NoRespondersError):  # unsubscribed
                await nc.request(f"botyard.action.{TENANT}.stopping.slow", request("slow", "k-2"), timeout=2)
        finally:
            await nc.close()
        return reply, gone.is_set()

    assert run(go()) == ({"text": "done"}, True)
