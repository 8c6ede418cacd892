"""Hostile bodies on a real node: each gets exactly one structured error, no actor dies or
restarts, nothing is recorded, and the well-formed turns sent beside them are all answered."""

import asyncio
import json
import uuid

import msgpack
import nats
import pytest

from botyard import Client, protocol
from botyard.events.conversation import Conversation
from botyard.events.store import EventStore

TENANT, BOT = "acme-shop", "support"
SUBJECT = f"botyard.turn.{TENANT}.{BOT}"
JSON_H = {"Content-Type": "application/json"}
LONE = b'"p\\ud800"'  # JSON allows the escape; no UTF-8 can encode the code point
TEXTS = ["hello", "where is my order?", "how much is shipping", "thanks", "bye"]


def notifications_after(node, position):
    """(originator id, topic) of every event the node's store recorded after ``position``."""
    store = EventStore(node.config.events_url, node.config.data_dir)
    try:
        top = store.recorder.max_notification_id() or 0
        if top <= position:
            return [], top
        found = store.recorder.select_notifications(position + 1, top - position, stop=top)
        return [(n.originator_id, n.topic) for n in found], top
    finally:
        store.close()


def position(node):
    return notifications_after(node, 1 << 62)[1]


async def requests_counting_replies(url, items, wait=1.0):
    """Send each (subject, data, headers) with its own reply inbox; every reply that came
    within ``wait`` seconds after the last request, per request."""
    nc = await nats.connect(url)
    prefix = f"_INBOX.hostile{uuid.uuid4().hex}"
    replies = {i: [] for i in range(len(items))}

    async def got(msg):
        replies[int(msg.subject.rsplit(".", 1)[1])].append(msg)

    sub = await nc.subscribe(f"{prefix}.>", cb=got)
    try:
        for i, (subject, data, headers) in enumerate(items):
            await nc.publish(subject, data, reply=f"{prefix}.{i}", headers=headers)
        await nc.flush()
        deadline = asyncio.get_running_loop().time() + 15
        while any(not r for r in replies.values()) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(wait)  # a second reply would come now
    finally:
        await sub.unsubscribe()
        await nc.close()
    return [replies[i] for i in range(len(items))]


def decoded(msg):
    as_json = (msg.headers or {}).get("Content-Type") == "application/json"
    return json.loads(msg.data) if as_json else msgpack.unpackb(msg.data)


def one_error(replies):
    assert len(replies) == 1, f"{len(replies)} replies"
    body = decoded(replies[0])
    assert set(body) == {"error"} and body["error"]["message"], body
    return body["error"]


def test_lone_surrogate_turns_beside_normal_traffic_fail_nothing(make_node, nats_url, caplog):
    """The outside fault test's case, compressed: the JSON turn with ``"p\\ud800"`` as its
    conversation id, 20 times over about 4 s, each sent together with a well-formed turn,
    while three other clients keep talking. Before the fix it killed the intent worker and
    every turn batched with it went unanswered."""
    node = make_node()
    before, restarts = position(node), node.stats()["restarts"]
    bad_body = b'{"conversation_id":' + LONE + b',"text":"where is my order?"}'
    cids = [f"normal-{uuid.uuid4().hex[:8]}-{i}" for i in range(6)]

    async def talk(client, cid, stop):
        n = 0
        while not stop.is_set() or n < 2:
            reply = await client.say(TENANT, BOT, cid, TEXTS[n % len(TEXTS)])
            n += 1
            assert (reply.conversation_id, reply.turn) == (cid, n) and reply.intent and reply.text
        return n

    async def go():
        clients = [await Client.connect(nats_url) for _ in range(4)]
        nc = await nats.connect(nats_url)
        stop = asyncio.Event()
        try:
            talking = [asyncio.create_task(talk(clients[1 + i % 3], cid, stop)) for i, cid in enumerate(cids[1:])]
            bad, beside = [], []
            for k in range(20):
                msg, good = await asyncio.gather(
                    nc.request(SUBJECT, bad_body, headers=JSON_H, timeout=5),
                    clients[0].say(TENANT, BOT, cids[0], TEXTS[k % len(TEXTS)]),
                )
                bad.append(json.loads(msg.data))
                beside.append(good.turn)
                await asyncio.sleep(0.2)
            stop.set()
            return bad, beside, await asyncio.gather(*talking)
        finally:
            await nc.close()
            for c in clients:
                await c.close()

    bad, beside, counts = asyncio.run(go())
    assert all(b["error"]["code"] == "invalid_request" and b["error"]["field"] == "conversation_id" for b in bad)
    assert beside == list(range(1, 21))
    assert all(n >= 2 for n in counts)
    assert node.stats()["restarts"] == restarts and "restarted" not in caplog.text
    assert all(ref.is_alive() for ref in [*node.routing.workers, *node.routing.conversations, node.routing.admin])
    recorded, _ = notifications_after(node, before)
    normal = {Conversation.create_id(TENANT, BOT, cid) for cid in cids}
    assert {origin for origin, _ in recorded} <= normal  # nothing for the bad turns
    turns = sum(1 for _, topic in recorded if topic.endswith("TurnRecorded"))
    assert turns == 20 + sum(counts)


@pytest.mark.parametrize("depth", [100_000, 30_000])
def test_deep_json_gets_one_structured_error_on_turn_and_admin_subjects(make_node, nats_url, depth):
    """100,000 levels are over the size limit of either subject; 30,000 fit under it and
    are refused for their depth. Either way: one reply, ``invalid_request``, fast."""
    node = make_node()
    before, restarts = position(node), node.stats()["restarts"]
    deep = b"[" * depth + b"]" * depth
    turn = b'{"conversation_id":"deep","text":"hi","x":' + deep + b"}"
    items = [
        (SUBJECT, turn, JSON_H), (SUBJECT, deep, JSON_H),
        ("botyard.admin.list", deep, JSON_H),
        ("botyard.admin.list", b'{"tenant":"acme-shop","bot":"support","x":' + deep + b"}", JSON_H),
        (SUBJECT, b"\x91" * depth + b"\xc0", None), ("botyard.admin.show", b"\x91" * depth + b"\xc0", None),
    ]
    for replies in asyncio.run(requests_counting_replies(nats_url, items)):
        error = one_error(replies)
        assert error["code"] == "invalid_request"
        assert ("size" in error) if depth == 100_000 else ("nested deeper than 32 levels" in error["message"]), error
    assert node.stats()["restarts"] == restarts
    assert notifications_after(node, before)[0] == []


ADMIN_SURROGATES = [
    ("list", {"tenant": "LONE", "bot": BOT}, "tenant"),
    ("list", {"tenant": TENANT, "bot": "LONE"}, "bot"),
    ("show", {"tenant": TENANT, "bot": BOT, "snapshot": "LONE"}, "snapshot"),
    ("promote", {"tenant": TENANT, "bot": BOT, "snapshot": "production", "alias": "staging", "actor": "LONE"}, "actor"),
    ("promote", {"tenant": TENANT, "bot": BOT, "snapshot": "production", "alias": "staging", "reason": "LONE"}, "reason"),
    ("promote", {"tenant": TENANT, "bot": BOT, "snapshot": "production", "alias": "LONE"}, "alias"),
    ("rollback", {"tenant": TENANT, "bot": BOT, "to": "LONE"}, "to"),
    ("replay", {"tenant": TENANT, "bot": BOT, "conversation_id": "LONE"}, "conversation_id"),
    ("label", {"tenant": TENANT, "bot": BOT, "conversation_id": "c", "turn": 1, "intent": "LONE"}, "intent"),
    ("whatif", {"tenant": TENANT, "bot": BOT, "snapshot": "production", "conversation_id": "LONE"}, "conversation_id"),
    ("export", {"tenant": TENANT, "bot": BOT, "extra": ["LONE"]}, "extra"),
    ("nope", {"tenant": "LONE"}, "tenant"),  # the body is decoded, and refused, before the verb is looked up
]


def test_a_lone_surrogate_anywhere_is_invalid_request_naming_the_field(make_node, nats_url):
    node = make_node()
    before, restarts = position(node), node.stats()["restarts"]
    items = []
    for field in ("conversation_id", "text", "turn_id", "alias"):
        body = {"conversation_id": "c-lone", "text": "hello", field: "LONE"}
        items.append((SUBJECT, json.dumps(body).encode().replace(b'"LONE"', LONE), JSON_H))
    for verb, body, _ in ADMIN_SURROGATES:
        items.append((protocol.admin_subject(verb), json.dumps(body).encode().replace(b'"LONE"', LONE), JSON_H))
    expected = ["conversation_id", "text", "turn_id", "alias"] + [field for _, _, field in ADMIN_SURROGATES]
    for replies, field in zip(asyncio.run(requests_counting_replies(nats_url, items)), expected):
        error = one_error(replies)
        assert (error["code"], error.get("field")) == ("invalid_request", field), error
    assert node.stats()["restarts"] == restarts
    assert notifications_after(node, before)[0] == []
    assert node.served()[f"{TENANT}/{BOT}"]  # the alias was not moved


def test_the_administrator_answers_once_whatever_the_service_raises(caplog):
    """Surprises are ``internal`` with a logged traceback; a refusal or a result that cannot
    be encoded still gets its one reply; the actor lives on."""
    from botyard.actors.administrator import Administrator
    from botyard.actors.messages import AdminWork
    from botyard.ops.errors import AdminError

    class Sent(list):
        def send(self, items):
            self.extend(items)

    def recurse(n):
        return recurse(n + 1)

    def handle(verb, body):
        if verb == "recursion":
            return recurse(0)
        if verb == "memory":
            raise MemoryError()
        if verb == "surrogate-refusal":
            raise AdminError("unknown_snapshot", "no snapshot 'p\ud800'", snapshot="p\ud800")
        if verb == "surrogate-result":
            return {"id": "p\ud800"}
        if verb == "surrogate-error":
            raise ValueError("bad p\ud800")
        return {"verb": verb}

    sent = Sent()
    actor = Administrator.start(handle, sent)
    try:
        verbs = ["recursion", "memory", "surrogate-refusal", "surrogate-result", "surrogate-error", "fine"]
        for as_json in (False, True):
            for verb in verbs:
                actor.ask(AdminWork(verb, protocol.encode_body({}, as_json), as_json, f"inbox.{verb}"), timeout=30)
        assert actor.is_alive()
    finally:
        actor.stop()
    assert [o.subject for o in sent] == [f"inbox.{v}" for v in verbs] * 2
    codes = [protocol.decode_body(o.body, o.as_json).get("error", {}).get("code", "ok") for o in sent]
    assert codes == ["internal", "internal", "unknown_snapshot", "internal", "internal", "ok"] * 2
    assert "RecursionError" in caplog.text and "Traceback" in caplog.text
