"""One contract for every event-store backend: SQLite and PostgreSQL."""

import time
import uuid

import msgpack
import pytest

from botyard.events import Conversation, EventStore, IntegrityError, UnknownConversation


def turn(conv, n, text="hi"):
    conv.record_turn(
        turn=n, turn_id=f"t{n}", user_text=text, intent="greet", confidence=0.9, reply="hello",
        fallback=False, snapshot="s" * 32, node="n1", received_at=time.time(),
        entities=[{"entity": "city", "value": "Oslo", "start": 0, "end": 4, "extractor": "model", "confidence": 0.9}],
    )


@pytest.fixture
def store(events_url, tmp_path):
    s = EventStore(events_url, tmp_path)
    yield s
    s.close()


def test_round_trip_by_replay(store):
    cid = uuid.uuid4().hex
    conv = Conversation(tenant="acme", bot="faq", conversation_id=cid)
    for n in (1, 2, 3):
        turn(conv, n, f"text {n}")
    store.save_all([conv])
    again = store.load_conversation("acme", "faq", cid)
    assert again.state() == conv.state()
    assert [e.turn for e in store.turns("acme", "faq", cid)] == [1, 2, 3]
    assert [e.user_text for e in store.turns("acme", "faq", cid)] == ["text 1", "text 2", "text 3"]


def test_stored_events_are_msgpack(store):
    cid = uuid.uuid4().hex
    conv = Conversation(tenant="acme", bot="faq", conversation_id=cid)
    turn(conv, 1)
    store.save_all([conv])
    stored = list(store.recorder.select_events(conv.id))
    assert len(stored) == 2
    state = msgpack.unpackb(stored[1].state, raw=False, strict_map_key=False, ext_hook=lambda c, d: d)
    assert state["user_text"] == "hi" and state["turn"] == 1


def test_v1_turn_events_are_upcast_with_no_entities(store):
    """Events written before entities existed (TurnRecorded v1) still replay."""
    cid = uuid.uuid4().hex
    conv = Conversation(tenant="acme", bot="faq", conversation_id=cid)
    turn(conv, 1)
    stored = [store.mapper.to_stored_event(e) for e in conv.collect_events()]
    codec = store.mapper.transcoder
    state = codec.decode(stored[1].state)
    del state["entities"]
    state["class_version"] = 1
    stored[1] = type(stored[1])(stored[1].originator_id, stored[1].originator_version, stored[1].topic, codec.encode(state))
    store.recorder.insert_events(stored)
    again = store.load_conversation("acme", "faq", cid)
    assert again.turns == 1 and again.recent[0]["entities"] == []
    assert store.turns("acme", "faq", cid)[0].entities == []


def test_stale_writer_is_rejected(store):
    cid = uuid.uuid4().hex
    conv = Conversation(tenant="acme", bot="faq", conversation_id=cid)
    store.save_all([conv])
    a = store.load_conversation("acme", "faq", cid)
    b = store.load_conversation("acme", "faq", cid)
    turn(a, 1)
    store.save_all([a])
    turn(b, 1, "stale")
    with pytest.raises(IntegrityError):
        store.save_all([b])
    assert [e.user_text for e in store.turns("acme", "faq", cid)] == ["hi"]


def test_many_conversations_in_one_transaction_all_or_nothing(store):
    ids = [uuid.uuid4().hex for _ in range(3)]
    convs = [Conversation(tenant="acme", bot="faq", conversation_id=i) for i in ids]
    for c in convs:
        turn(c, 1)
    store.save_all(convs)
    fresh = [store.load_conversation("acme", "faq", i) for i in ids]
    stale = store.load_conversation("acme", "faq", ids[0])
    turn(fresh[0], 2)
    store.save_all([fresh[0]])
    turn(stale, 2, "stale")
    turn(fresh[1], 2, "innocent")
    with pytest.raises(IntegrityError):
        store.save_all([stale, fresh[1]])
    assert len(store.turns("acme", "faq", ids[1])) == 1  # nothing of the failed batch landed


def test_unknown_conversation(store):
    assert store.load_conversation("acme", "faq", "nope") is None
    with pytest.raises(UnknownConversation) as info:
        store.turns("acme", "faq", "nope")
    assert info.value.code == "unknown_conversation"


def test_conversations_are_scoped_by_tenant_and_bot(store):
    cid = uuid.uuid4().hex
    for tenant in ("a", "b"):
        conv = Conversation(tenant=tenant, bot="faq", conversation_id=cid)
        turn(conv, 1, tenant)
        store.save_all([conv])
    assert store.turns("a", "faq", cid)[0].user_text == "a"
    assert store.turns("b", "faq", cid)[0].user_text == "b"
