"""The turn path end to end: real nats-server, real actors, real SQLite and PostgreSQL."""

import asyncio
import json
import uuid

import msgpack
import nats
import pytest

from botyard import Client, TurnError
from botyard.dialogue.spec import spec_of
from botyard.events.errors import UnknownConversation
from botyard.events.store import EventStore
from tests.conftest import promote

TENANT, BOT = "acme-shop", "support"
SUBJECT = f"botyard.turn.{TENANT}.{BOT}"


async def raw_request(url, subject, data, headers=None):
    nc = await nats.connect(url)
    try:
        return await nc.request(subject, data, headers=headers, timeout=5)
    finally:
        await nc.close()


def stored_turns(node, conversation_id, tenant=TENANT, bot=BOT):
    store = EventStore(node.config.events_url, node.config.data_dir)
    try:
        return store.turns(tenant, bot, conversation_id)
    except UnknownConversation:
        return []
    finally:
        store.close()


def test_round_trip_msgpack_and_json(make_node, nats_url, example_bot):
    node = make_node()
    cid = uuid.uuid4().hex

    async def go():
        async with await Client.connect(nats_url) as client:
            first = await client.say(TENANT, BOT, cid, "where is my order?")
        body = json.dumps({"conversation_id": cid, "text": "thank you so much"}).encode()
        msg = await raw_request(nats_url, SUBJECT, body, {"Content-Type": "application/json"})
        return first, msg

    first, msg = asyncio.run(go())
    assert (first.turn, first.intent, first.conversation_id, first.fallback) == (1, "order_status", cid, False)
    assert first.snapshot == node.served()[f"{TENANT}/{BOT}"]
    # the example bot's order status is a form: with no order number in the text, it asks for one
    assert (first.form, first.asked, first.slots) == ("order_status", "order_number", {})
    assert first.text in spec_of(example_bot).slot("order_number").questions
    reply = json.loads(msg.data)
    assert msg.headers.get("Content-Type") == "application/json"
    assert (reply["turn"], reply["intent"], reply["conversation_id"]) == (2, "thanks", cid)
    assert (reply["form"], reply["asked"]) == ("order_status", "order_number")  # a digression: answered, then asked again
    assert set(reply) >= {"conversation_id", "turn", "text", "intent", "confidence", "snapshot"}
    events = stored_turns(node, cid)
    assert [(e.turn, e.user_text, e.intent) for e in events] == [
        (1, "where is my order?", "order_status"), (2, "thank you so much", "thanks"),
    ]
    assert events[0].reply == first.text and events[0].snapshot == first.snapshot


def test_100_turns_over_10_concurrent_conversations(make_node, nats_url, events_url):
    node = make_node(events_url=events_url)
    cids = [f"conc-{uuid.uuid4().hex[:8]}-{i}" for i in range(10)]

    async def talk(client, cid):
        return [(await client.say(TENANT, BOT, cid, f"where is order number {k}")).turn for k in range(10)]

    async def go():
        async with await Client.connect(nats_url) as client:
            return await asyncio.gather(*(talk(client, c) for c in cids))

    numbers = asyncio.run(go())
    assert numbers == [list(range(1, 11))] * 10
    total = 0
    for cid in cids:
        events = stored_turns(node, cid)
        assert [e.turn for e in events] == list(range(1, 11))
        assert [e.user_text for e in events] == [f"where is order number {k}" for k in range(10)]
        total += len(events)
    assert total == 100


def test_turns_handed_over_in_batches_are_all_answered_while_the_node_is_inspected(make_node, nats_url):
    """Turns reach workers and conversation actors in batches, and an actor keeps a batch
    back while its inbox is not empty; stats calls (proxy calls, which bypass on_receive)
    land between turns here, and no turn may wait behind one."""
    import threading

    node = make_node()
    stop = threading.Event()

    def inspect():
        while not stop.is_set():
            node.stats()

    inspector = threading.Thread(target=inspect, daemon=True)
    inspector.start()
    cids = [f"batch-{uuid.uuid4().hex[:8]}-{i}" for i in range(32)]

    async def talk(client, cid):
        return [(await client.say(TENANT, BOT, cid, f"where is order number {k}")).turn for k in range(5)]

    async def go():
        async with await Client.connect(nats_url) as client:
            return await asyncio.gather(*(talk(client, c) for c in cids))

    try:
        numbers = asyncio.run(go())
    finally:
        stop.set()
        inspector.join(10)
    assert numbers == [list(range(1, 6))] * 32
    assert all([e.turn for e in stored_turns(node, cid)] == list(range(1, 6)) for cid in cids)


def test_passivated_conversation_comes_back_equal(make_node, nats_url):
    node = make_node()
    cid = uuid.uuid4().hex

    async def go(texts):
        async with await Client.connect(nats_url) as client:
            return [await client.say(TENANT, BOT, cid, t) for t in texts]

    asyncio.run(go(["hello", "how much is shipping", "can I pay by card"]))
    before = node.conversation_state(TENANT, BOT, cid)
    assert before["turns"] == 3
    assert node.passivate_all() >= 1
    assert node.conversation_state(TENANT, BOT, cid) is None  # dropped from memory
    assert node.stats()["resident_conversations"] == 0
    after = node.conversation_state(TENANT, BOT, cid, activate=True)
    assert after == before
    (fourth,) = asyncio.run(go(["thanks"]))
    assert fourth.turn == 4


def test_a_placement_change_drops_only_the_conversations_that_moved(make_node, nats_url):
    from botyard.actors.messages import Passivate

    node = make_node()
    cids = [f"stay-{uuid.uuid4().hex[:6]}", f"move-{uuid.uuid4().hex[:6]}"]

    async def go():
        async with await Client.connect(nats_url) as client:
            for cid in cids:
                await client.say(TENANT, BOT, cid, "hello")

    asyncio.run(go())
    dropped = sum(ref.ask(Passivate(lambda t, b, c: c.startswith("stay-")), timeout=10) for ref in node.routing.conversations)
    assert dropped == 1
    assert node.conversation_state(TENANT, BOT, cids[0])["turns"] == 1  # still resident
    assert node.conversation_state(TENANT, BOT, cids[1]) is None  # moved: rebuilt from events when asked
    assert node.conversation_state(TENANT, BOT, cids[1], activate=True)["turns"] == 1


def test_idle_conversations_are_dropped(make_node, nats_url):
    node = make_node(idle_seconds="0.2", max_conversations="4", conversation_shards="1")

    async def go():
        async with await Client.connect(nats_url) as client:
            for _i in range(8):
                await client.say(TENANT, BOT, f"idle-{uuid.uuid4().hex}", "hi")

    asyncio.run(go())
    assert node.stats()["resident_conversations"] <= 4  # memory bound holds
    import time

    deadline = time.monotonic() + 10
    while node.stats()["resident_conversations"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert node.stats()["resident_conversations"] == 0


def test_retried_turn_id_is_answered_once(make_node, nats_url):
    node = make_node()
    cid = uuid.uuid4().hex

    async def go():
        async with await Client.connect(nats_url) as client:
            a = await client.say(TENANT, BOT, cid, "hello", turn_id="same-turn")
            b = await client.say(TENANT, BOT, cid, "hello", turn_id="same-turn")
            c = await client.say(TENANT, BOT, cid, "bye")
            return a, b, c

    a, b, c = asyncio.run(go())
    assert a == b and c.turn == 2
    assert [e.turn for e in stored_turns(node, cid)] == [1, 2]


BAD = [
    ("malformed msgpack", b"\xc1\xc1", None, "malformed"),
    ("malformed json", b"{'no': json", {"Content-Type": "application/json"}, "malformed"),
    ("not a map", msgpack.packb(["a", "list"]), None, "invalid_request"),
    ("missing text", msgpack.packb({"conversation_id": "BADCID"}), None, "invalid_request"),
    ("text not a string", msgpack.packb({"conversation_id": "BADCID", "text": 12}), None, "invalid_request"),
    ("text too long", msgpack.packb({"conversation_id": "BADCID", "text": "x" * 5000}), None, "text_too_long"),
]


@pytest.mark.parametrize("name, data, headers, code", BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_structured_error_and_records_nothing(make_node, nats_url, name, data, headers, code):
    node = make_node()
    msg = asyncio.run(raw_request(nats_url, SUBJECT, data, headers))
    body = json.loads(msg.data) if headers else msgpack.unpackb(msg.data)
    assert body["error"]["code"] == code and body["error"]["message"]
    assert stored_turns(node, "BADCID") == []

    async def still_serving():
        async with await Client.connect(nats_url) as client:
            return await client.say(TENANT, BOT, uuid.uuid4().hex, "hello")

    assert asyncio.run(still_serving()).turn == 1


def test_text_limit_is_configurable(make_node, nats_url):
    make_node(max_text_bytes="10")

    async def go():
        async with await Client.connect(nats_url) as client:
            await client.say(TENANT, BOT, "c", "this is longer than ten bytes")

    with pytest.raises(TurnError) as info:
        asyncio.run(go())
    assert info.value.code == "text_too_long" and info.value.fields["limit"] == 10


@pytest.mark.parametrize("tenant, bot, code", [("nobody", "support", "unknown_tenant"), (TENANT, "nobot", "unknown_bot")])
def test_unknown_tenant_or_bot(make_node, nats_url, tenant, bot, code):
    node = make_node()

    async def go():
        async with await Client.connect(nats_url) as client:
            try:
                await client.say(tenant, bot, "c1", "hello")
            except TurnError as exc:
                return exc
            return await client.say(TENANT, BOT, uuid.uuid4().hex, "hello")

    err = asyncio.run(go())
    assert isinstance(err, TurnError) and err.code == code
    assert stored_turns(node, "c1", tenant, bot) == []


def test_a_bot_promoted_while_the_node_runs_is_served(make_node, nats_url, tmp_path, snapshot_dir):
    """No notification on NATS: the node finds the move in the event log on its own."""
    import shutil
    import time

    from botyard.snapshots.store import LocalSnapshotStore

    own = tmp_path / "own-snapshots"
    node = make_node(snapshot_dir=str(own))
    source = LocalSnapshotStore(snapshot_dir)
    snap = source.load(source.latest(TENANT, BOT).id)
    manifest = {**snap.manifest, "bot": "late"}
    manifest["definition"] = {**manifest["definition"], "bot": "late"}
    info = LocalSnapshotStore(own).save(manifest, snap.arrays)
    assert f"{TENANT}/late" not in node.served()
    promote(node.config.events_url, node.config.data_dir, own, bot="late")
    deadline = time.monotonic() + 10
    while f"{TENANT}/late" not in node.served() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.served()[f"{TENANT}/late"] == info.id

    async def go():
        async with await Client.connect(nats_url) as client:
            return await client.say(TENANT, "late", "c1", "hello")

    assert asyncio.run(go()).intent == "greeting"
    shutil.rmtree(own)


def test_supervisor_restarts_a_crashed_actor(make_node, nats_url, caplog):
    import time

    node = make_node()
    cid = uuid.uuid4().hex

    async def say(text):
        async with await Client.connect(nats_url) as client:
            return await client.say(TENANT, BOT, cid, text)

    assert asyncio.run(say("hello")).turn == 1
    crashed = node.routing.conversations[0]
    crashed.tell("not a message any actor understands")  # on_receive raises: pykka stops the actor
    deadline = time.monotonic() + 10
    while node.stats()["restarts"] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert node.stats()["restarts"] == 1
    assert not crashed.is_alive() and node.routing.conversations[0].is_alive()
    assert "restarted conversation actor #0, which died of TypeError: ConversationActor got str" in caplog.text
    assert asyncio.run(say("thanks")).turn == 2  # state rebuilt from events by the new actor


def test_entities_fill_the_reply_and_are_recorded(make_node, nats_url):
    node = make_node()
    cid = uuid.uuid4().hex

    async def go():
        async with await Client.connect(nats_url) as client:
            shipping = await client.say(TENANT, BOT, cid, "how much is shipping to Austria")
            order = await client.say(TENANT, BOT, cid, "has order 4821377 been sent? it was boots")
            outside = await client.say(TENANT, BOT, cid, "what's the capital of peru")
        return shipping, order, outside

    shipping, order, outside = asyncio.run(go())
    assert shipping.intent == "shipping_costs"
    assert [(e["entity"], e["value"], e["extractor"]) for e in shipping.entities] == [("country", "Austria", "model")]
    assert "Austria" in shipping.text
    found = {(e["entity"], e["value"], e["extractor"]) for e in order.entities}
    assert found == {("order_number", "4821377", "regex"), ("product", "hiking boots", "list")}
    assert "4821377" in order.text
    assert outside.fallback and outside.entities == []
    events = stored_turns(node, cid)
    assert events[0].entities == shipping.entities and events[1].entities == order.entities
    assert events[2].fallback


def test_the_node_freezes_long_lived_objects_which_hold_no_cycles(make_node, nats_url, snapshot_dir):
    """Full collections skip what a node keeps (imports, models, conversations): that is only
    safe because a model or a conversation, once dropped, is freed without the collector."""
    import gc
    import weakref

    from botyard.events.conversation import Conversation
    from botyard.models.runtime import Predictor
    from botyard.snapshots.store import LocalSnapshotStore

    gc.unfreeze()
    try:
        make_node(gc_freeze_seconds=30)
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
    gc.disable()
    try:
        store = LocalSnapshotStore(snapshot_dir)
        predictor = Predictor.from_snapshot(store.load(store.latest("acme-shop", "support").id))
        predictor.predict("where is my order 12345 to [austria]")
        conversation = Conversation(tenant="t", bot="b", conversation_id="c")
        conversation.record_turn(turn=1, turn_id="x", user_text="hi", intent="greeting", confidence=0.9, reply="hello",
                                 fallback=False, snapshot="s", node="n", received_at=1.0, entities=[])
        conversation.collect_events()
        refs = [weakref.ref(predictor), weakref.ref(predictor.featurizer), weakref.ref(conversation)]
        del predictor, conversation
        assert [r() for r in refs] == [None, None, None]  # freed by reference counting alone
    finally:
        gc.enable()


BURST = [
    "where is my order?", "hi there", "can I pay with PayPal", "how much is shipping to Austria",
    "thanks a lot", "my parcel never arrived", "bye for now", "what does delivery cost", "hello again",
    "has order 4821377 been sent?", "do you take credit cards", "goodbye",
]
"""Turns sent all at once to a node serving a context-tier model."""


def say_counting_encoder_passes(nats_url, texts):
    """All ``texts`` at once, each in a conversation of its own (after a warm-up turn that loads
    the snapshot); the replies, and the batch size of each pass of the sentence encoder (its own
    layers or a fine-tuned model's)."""
    from botyard.models import encoder

    shared = encoder.available()
    shared._cache.clear()
    passes = []
    hidden = shared.hidden
    shared.hidden = lambda ids, mask, *layers: passes.append(ids.shape[0]) or hidden(ids, mask, *layers)
    try:
        async def go():
            async with await Client.connect(nats_url) as client:
                await client.say(TENANT, BOT, "warm-up", "hello")
                passes.clear()
                return await asyncio.gather(*(client.say(TENANT, BOT, f"c{i}", t) for i, t in enumerate(texts)))

        return asyncio.run(go()), passes
    finally:
        del shared.hidden


def assert_answered_as_alone(texts, replies, alone, snapshot_id):
    """Each reply is the answer the snapshot gives its text alone."""
    for text, reply in zip(texts, replies):
        expected = alone.predict(text)
        assert reply.snapshot == snapshot_id
        assert (reply.intent, reply.fallback) == (expected.intent, expected.fallback), text
        assert abs(reply.confidence - expected.confidence) < 1e-4, text


def test_context_tier_turns_arriving_together_are_answered_as_one_by_one(make_node, nats_url, tmp_path, example_bot):
    """A node serving a context-tier snapshot encodes turns that arrive together in one pass
    of the sentence encoder (the worker primes the encoder's cache); every turn gets the
    answer the snapshot gives it alone."""
    from botyard.models import encoder
    from botyard.models.runtime import Predictor
    from botyard.snapshots.store import LocalSnapshotStore
    from botyard.training.config import TrainConfig
    from botyard.training.pipeline import train_to_store

    own = tmp_path / "context-snapshots"
    config = TrainConfig(epochs=8, seed=2, context=True, folds=1, no_final_fit=True)  # one training: the test is about serving
    info, result = train_to_store(example_bot, LocalSnapshotStore(own), config)
    assert result.manifest["model"]["context"]["name"] == encoder.NAME
    node = make_node(snapshot_dir=str(own))
    promote(node.config.events_url, node.config.data_dir, own, snapshot=info.id)
    texts = BURST
    replies, passes = say_counting_encoder_passes(nats_url, texts)
    alone = Predictor(result.manifest, result.arrays)
    encoder.available()._cache.clear()
    assert_answered_as_alone(texts, replies, alone, info.id)
    assert sum(passes) == len(texts)  # each utterance encoded once, alone or in a batch


@pytest.mark.parametrize("second", ["context", "tuned"])
def test_a_cascade_encodes_only_the_turns_its_gate_sends_on(make_node, nats_url, tmp_path, example_bot, second):
    """A node serving a cascade snapshot answers each turn as the snapshot does alone, and runs
    the sentence encoder (its own layers, or a fine-tuned model's) only for the turns the bag
    model is unsure of, once each."""
    from botyard.models import encoder
    from botyard.models.runtime import Predictor
    from botyard.models.text import tokenize
    from botyard.snapshots.store import LocalSnapshotStore
    from botyard.training.config import TrainConfig
    from botyard.training.pipeline import train_to_store

    own = tmp_path / "cascade-snapshots"
    config = TrainConfig(epochs=8, seed=2, cascade=True, tuned=second == "tuned", context_epochs=2 if second == "tuned" else 0,
                         no_final_fit=True)  # one training: the test is about serving
    info, result = train_to_store(example_bot, LocalSnapshotStore(own), config)
    node = make_node(snapshot_dir=str(own))
    promote(node.config.events_url, node.config.data_dir, own, snapshot=info.id)
    texts = BURST + ["erm what", "the thing with the box"]
    alone = Predictor(result.manifest, result.arrays)
    sent = [t for t in texts if alone.escalates([w.text for w in tokenize(t)])]
    assert 0 < len(sent) < len(texts), "the example bot should have sure and unsure turns"
    replies, passes = say_counting_encoder_passes(nats_url, texts)
    assert sum(passes) == len(sent)  # the sure turns never reached the encoder
    if second == "tuned":  # one utterance per pass, spread over the cores: each as it is computed alone
        assert set(passes) == {1}
    encoder.available()._cache.clear()
    assert_answered_as_alone(texts, replies, alone, info.id)

    # One conversation's turns sent at once, unsure ones among them: the sure turns after an
    # unsure one wait for it at the encoder, so the conversation records them in the order sent.
    script = [sent[0], *[t for t in texts if t not in sent][:2], sent[-1], texts[0]]
    cid = f"order-{uuid.uuid4().hex[:8]}"

    async def at_once():
        async with await Client.connect(nats_url) as client:
            return await asyncio.gather(*(client.say(TENANT, BOT, cid, t) for t in script))

    replies = asyncio.run(at_once())
    assert [r.turn for r in replies] == [1, 2, 3, 4, 5]
    assert [e.user_text for e in stored_turns(node, cid)] == script
    assert_answered_as_alone(script, replies, alone, info.id)

