"""Actions end to end: a real node calls an action served by another process over a real
nats-server. The action (tests/data/plain_action.py) is plain nats-py with no botyard import,
written from docs/actions.md; it reports every request it receives on ``test.seen.<worker>``,
so the calls are counted on the action's side."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import nats

from botyard import Client
from botyard.dialogue.spec import spec_of
from botyard.events.turns import conversation_turns

TENANT, BOT = "acme-shop", "support"
PLAIN = Path(__file__).resolve().parent.parent / "data" / "plain_action.py"


@contextmanager
def workers(nats_url: str, *modes: str):
    """Start one plain action process per mode (workers w0, w1, ...); stop them all after."""
    procs = []
    try:
        for i, mode in enumerate(modes):
            procs.append(subprocess.Popen([sys.executable, str(PLAIN), nats_url, f"w{i}", mode], stdout=subprocess.PIPE, text=True))
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


class Bus:
    """A client, and every request the action workers reported (``seen``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[dict] = []

    async def __aenter__(self) -> "Bus":
        self.nc = await nats.connect(self.url)

        async def seen(msg) -> None:
            self.seen.append(json.loads(msg.data))

        await self.nc.subscribe("test.seen.*", cb=seen)
        await self.nc.flush()
        self.client = Client(self.nc, timeout=10.0)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.nc.drain()

    async def settle(self) -> None:
        await self.nc.flush()
        await asyncio.sleep(0.2)


def recorded_calls(node, cid: str) -> list[dict]:
    rows = conversation_turns(node.events, TENANT, BOT, cid)
    return [d for r in rows for d in r.dialogue if d["name"] == "ActionCalled"]


def cid() -> str:
    return f"act-{uuid.uuid4().hex[:10]}"


def test_an_action_in_another_process_written_with_plain_nats_py_answers_and_replay_never_calls_it(make_node, nats_url):
    node = make_node()
    c = cid()

    async def go():
        async with Bus(nats_url) as bus:
            r = await bus.client.say(TENANT, BOT, c, "where is my order 4821377")
            assert (r.intent, r.text, r.slots) == ("order_status", "(plain) Order 4821377 shipped on Monday.", {"order_number": "4821377"})
            await bus.settle()
            assert len(bus.seen) == 1
            seen = bus.seen[0]
            assert seen["idempotency_key"] == seen["header_key"] == f"{c}:1:0:{r.turn_id}" and seen["attempt"] == 1
            assert (seen["action"], seen["form"], seen["turn"]) == ("look_up_order", "order_status", 1)
            assert seen["slots"] == {"order_number": "4821377"}
            # replay, the transcript and what-if read the recorded outcome: no call reaches the action
            transcript = await bus.client.admin("replay", tenant=TENANT, bot=BOT, conversation_id=c)
            report = await bus.client.admin("whatif", tenant=TENANT, bot=BOT, snapshot="production", conversation_id=c)
            await bus.settle()
            assert len(bus.seen) == 1
            return transcript, report

    with workers(nats_url, "answer"):
        transcript, report = asyncio.run(go())
    assert report["turns"] == 1 and report["changed_reply"] == 0 and report["would_call"] == 0
    assert "(plain) Order 4821377 shipped on Monday." in json.dumps(transcript)
    [called] = recorded_calls(node, c)
    assert (called["action"], called["status"], called["attempts"]) == ("look_up_order", "ok", 1)
    assert called["key"].startswith(f"{c}:1:0:")
    assert called["reply"] == {"text": "(plain) Order 4821377 shipped on Monday."} and called["duration_ms"] > 0


def test_an_action_that_never_answers_gets_the_failure_response_after_its_retries_and_the_turn_is_recorded(
    make_node, nats_url, example_bot
):
    node = make_node()
    c = cid()
    look_up = spec_of(example_bot).action("look_up_order")

    async def go():
        async with Bus(nats_url) as bus:
            r = await bus.client.say(TENANT, BOT, c, "where is my order 4821377")
            await bus.settle()
            return r, bus.seen

    with workers(nats_url, "stall"):
        r, seen = asyncio.run(go())
    assert r.text == look_up.failure.replace("{order_number}", "4821377") and r.slots == {"order_number": "4821377"}
    assert [s["attempt"] for s in seen] == [1, 2] and {s["idempotency_key"] for s in seen} == {f"{c}:1:0:{r.turn_id}"}
    [called] = recorded_calls(node, c)
    assert (called["status"], called["attempts"]) == ("timeout", 2)
    assert called["duration_ms"] >= 2 * look_up.timeout * 1000


def test_no_action_running_is_no_responders_and_a_reply_breaking_the_declaration_is_refused(make_node, nats_url, example_bot):
    node = make_node()
    failure = spec_of(example_bot).action("look_up_order").failure.replace("{order_number}", "4821377")
    a, b = cid(), cid()

    async def go(c):
        async with Bus(nats_url) as bus:
            return await bus.client.say(TENANT, BOT, c, "where is my order 4821377")

    assert asyncio.run(go(a)).text == failure  # nobody serves the subject
    with workers(nats_url, "bad"):
        r = asyncio.run(go(b))  # sets slot vip, which look_up_order does not declare
    assert r.text == failure and "vip" not in r.slots
    assert [(x["status"], x["attempts"]) for x in recorded_calls(node, a)] == [("no_responders", 2)]
    [refused] = recorded_calls(node, b)
    assert refused["status"] == "refused" and "vip" in refused["error"]


def test_a_retried_turn_with_the_same_turn_id_calls_the_action_once(make_node, nats_url):
    make_node()
    c = cid()

    async def go():
        async with Bus(nats_url) as bus:
            same = [bus.client.say(TENANT, BOT, c, "where is my order 4821377", turn_id="t-1") for _ in range(3)]
            replies = await asyncio.gather(*same)  # the retries arrive while the first waits for the action
            again = await bus.client.say(TENANT, BOT, c, "where is my order 4821377", turn_id="t-1")
            await bus.settle()
            return [*replies, again], bus.seen

    with workers(nats_url, "answer"):
        replies, seen = asyncio.run(go())
    assert len(seen) == 1 and seen[0]["idempotency_key"] == f"{c}:1:0:t-1"
    assert {(r.turn, r.text) for r in replies} == {(1, "(plain) Order 4821377 shipped on Monday.")}


def test_an_action_worker_killed_mid_call_the_retry_reaches_another_worker_with_the_same_key(make_node, nats_url):
    node = make_node()
    c = cid()

    async def go(procs):
        async with Bus(nats_url) as bus:
            turn = asyncio.ensure_future(bus.client.say(TENANT, BOT, c, "where is my order 4821377"))
            for _ in range(100):
                if bus.seen:
                    break
                await asyncio.sleep(0.02)
            first = bus.seen[0]
            procs[int(first["worker"][1:])].send_signal(signal.SIGKILL)  # the worker holding the first try dies
            r = await turn
            await bus.settle()
            return r, bus.seen

    with workers(nats_url, "stall-first", "stall-first") as procs:
        r, seen = asyncio.run(go(procs))
    assert r.text == "(plain) Order 4821377 shipped on Monday."
    assert [s["attempt"] for s in seen] == [1, 2]
    assert seen[0]["worker"] != seen[1]["worker"]
    assert seen[0]["idempotency_key"] == seen[1]["idempotency_key"] == f"{c}:1:0:{r.turn_id}"
    [called] = recorded_calls(node, c)
    assert (called["status"], called["attempts"]) == ("ok", 2)


def test_a_completed_form_calls_its_action_with_the_forms_slots_and_later_turns_wait_in_order(make_node, nats_url):
    make_node()
    c = cid()

    async def go():
        async with Bus(nats_url) as bus:
            say = lambda text: bus.client.say(TENANT, BOT, c, text)
            await say("I want to return an item")
            await say("4821377")
            await say("the tent")
            await say("it is too small for my family")
            r, after = await asyncio.gather(say("yes"), say("thanks"))  # "thanks" queues behind the call
            await bus.settle()
            return r, after, bus.seen

    with workers(nats_url, "answer"):
        r, after, seen = asyncio.run(go())
    assert r.text == "(plain) Return R-500 registered for the tent." and r.slots["return_number"] == "R-500"
    assert after.turn == r.turn + 1
    [call] = seen
    assert call["action"] == "create_return" and call["form"] == "start_return"
    assert call["slots"] == {"order_number": "4821377", "item": "tent", "reason": "it is too small for my family"}


def test_the_conversations_of_other_users_go_on_while_one_waits_for_its_action(make_node, nats_url):
    make_node()
    slow, other = cid(), cid()

    async def go():
        async with Bus(nats_url) as bus:
            waiting = asyncio.ensure_future(bus.client.say(TENANT, BOT, slow, "where is my order 4821377"))
            while not bus.seen:
                await asyncio.sleep(0.02)
            r = await bus.client.say(TENANT, BOT, other, "what are your opening hours")
            still_waiting = not waiting.done()
            await waiting
            return r, still_waiting

    with workers(nats_url, "stall"):
        r, still_waiting = asyncio.run(go())
    assert r.intent == "opening_hours" and still_waiting  # answered while the other turn's action had not
