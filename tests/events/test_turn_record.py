"""One frozen record of a turn (``turn_record.TurnRecord``): the event stores it, ``TurnRow`` is one,
the reply is made from it; and every read of turn events runs the event's upcasters."""

import dataclasses
import time
import uuid

import pytest

from botyard.client import Reply
from botyard.events.activity import Activity
from botyard.events.conversation import Conversation
from botyard.events.store import EventStore
from botyard.events.turns import TurnRow, bot_turns, conversation_turns
from botyard.turn_record import REPLY_FIELDS, TURN_FIELDS, UNRECORDED_FIELDS, TurnRecord, reply_body

RECORD = TurnRecord(
    turn=1, turn_id="t1", user_text="to oslo", intent="travel", confidence=0.75, reply="Oslo it is", fallback=False,
    snapshot="s" * 32, node="n1", received_at=1_700_000_000.5,
    entities=[{"entity": "city", "value": "Oslo", "start": 3, "end": 7, "extractor": "model", "confidence": 0.9}],
)


@pytest.fixture
def store(events_url, tmp_path):
    s = EventStore(events_url, tmp_path)
    yield s
    s.close()


def test_the_event_stores_the_record_field_by_field():
    base = {"originator_id", "originator_version", "timestamp"}
    assert [f.name for f in dataclasses.fields(Conversation.TurnRecorded) if f.name not in base] == list(TURN_FIELDS)
    conv = Conversation(tenant="a", bot="b", conversation_id="c")
    conv.record_turn(**RECORD.as_dict())
    _, e = conv.collect_events()
    assert e.record == RECORD and conv.recent == [RECORD.reply_fields()]
    with pytest.raises(dataclasses.FrozenInstanceError):
        RECORD.turn = 2


def test_a_turn_row_is_the_record_with_where_and_when(store):
    cid = uuid.uuid4().hex
    conv = Conversation(tenant="acme", bot="faq", conversation_id=cid)
    conv.record_turn(**RECORD.as_dict())
    store.save_all([conv])
    (row,) = conversation_turns(store, "acme", "faq", cid)
    assert isinstance(row, TurnRow) and isinstance(row, TurnRecord)
    assert TurnRecord(**{name: getattr(row, name) for name in TURN_FIELDS}) == RECORD
    assert list(row.to_dict()) == [
        "ref", "tenant", "bot", "conversation_id", "turn", "turn_id", "user_text", "intent", "confidence", "fallback",
        "entities", "reply", "snapshot", "node", "received_at", "latency_ms", "dialogue",
    ]
    assert row.ref == f"acme/faq/{cid}#1" and row.recorded_at > row.received_at and row.position == 0
    (same,) = [r for r in bot_turns(store, "acme", "faq") if r.conversation_id == cid]
    assert dataclasses.replace(same, position=0) == row and same.position > 0


def test_the_reply_is_made_from_the_record():
    body = reply_body("c-9", RECORD.reply_fields(), "n2")
    assert body == {
        "conversation_id": "c-9", "turn": 1, "turn_id": "t1", "text": "Oslo it is", "intent": "travel", "confidence": 0.75,
        "fallback": False, "entities": RECORD.entities, "snapshot": "s" * 32, "node": "n2",
        "fallback_reason": None, "score": None,  # not recorded: nil in a retry's reply
        "slots": {}, "form": None, "asked": None, "handed_off": False,
    }
    assert list(body) == ["conversation_id", "turn", "turn_id", "text", "intent", "confidence", "fallback", "entities",
                          "snapshot", "node", "fallback_reason", "score", "slots", "form", "asked",
                          "handed_off"]  # the wire order, dialogue last
    fresh = reply_body("c-9", RECORD.reply_fields(), "n2", unrecorded={"fallback_reason": "low_score", "score": 0.42})
    assert (fresh["fallback_reason"], fresh["score"]) == ("low_score", 0.42) and set(fresh) == set(body)
    assert not set(UNRECORDED_FIELDS) & set(TURN_FIELDS)  # events are forever: these never enter one
    assert set(REPLY_FIELDS) <= set(TURN_FIELDS)
    assert {f.name for f in dataclasses.fields(Reply)} == set(body) | {"agent"}  # agent: only in an agent's answer
    assert Reply.from_wire(body) == Reply(**body)


def _store_v1_turn(store, tenant: str, cid: str, class_version_in_state: bool) -> None:
    """A TurnRecorded v1, as written before ``entities`` existed."""
    conv = Conversation(tenant=tenant, bot="faq", conversation_id=cid)
    conv.record_turn(**RECORD.as_dict())
    stored = [store.mapper.to_stored_event(e) for e in conv.collect_events()]
    codec = store.mapper.transcoder
    state = codec.decode(stored[1].state)
    del state["entities"]
    if class_version_in_state:
        state["class_version"] = 1
    else:
        del state["class_version"]  # as the mapper writes a v1 event
    stored[1] = type(stored[1])(stored[1].originator_id, stored[1].originator_version, stored[1].topic, codec.encode(state))
    store.recorder.insert_events(stored)


@pytest.mark.parametrize("class_version_in_state", [True, False])
def test_projections_run_the_upcaster_of_a_v1_turn(store, monkeypatch, class_version_in_state):
    tenant = f"t{uuid.uuid4().hex[:8]}"
    _store_v1_turn(store, tenant, "c", class_version_in_state)
    assert bot_turns(store, tenant, "faq")[0].entities == []
    assert bot_turns(store, tenant, "faq", last=1)[0].entities == []

    # The entities come from the upcaster, not from a default of the reader's: a marked upcaster shows.
    mark = [{"entity": "upcast", "value": "v1", "start": 0, "end": 0, "extractor": "upcaster", "confidence": 1.0}]
    monkeypatch.setattr(Conversation.TurnRecorded, "upcast_v1_v2", staticmethod(lambda state: state.update(entities=mark)))
    assert bot_turns(store, tenant, "faq")[0].entities == mark
    assert bot_turns(store, tenant, "faq", last=1)[0].entities == mark
    assert conversation_turns(store, tenant, "faq", "c")[0].entities == mark
    assert store.load_conversation(tenant, "faq", "c").recent[0]["entities"] == mark
    seen = []
    monkeypatch.setattr(Activity, "_turn", lambda self, owner, s: seen.append(s["entities"]))
    Activity(store).catch_up()
    assert mark in seen


def test_a_projection_of_many_turns_reads_them_all(store):
    """bot_turns over a few thousand turns (the 20,000-turn timing is in the report of this change)."""
    tenant, now = f"t{uuid.uuid4().hex[:8]}", time.time()
    convs = []
    for c in range(300):
        conv = Conversation(tenant=tenant, bot="faq", conversation_id=f"c{c}")
        for n in range(1, 11):
            conv.record_turn(**{**RECORD.as_dict(), "turn": n, "turn_id": f"{c}-{n}", "received_at": now + c})
        convs.append(conv)
    store.save_all(convs)
    rows = bot_turns(store, tenant, "faq")
    assert len(rows) == 3000 and [r.turn for r in rows[:10]] == list(range(1, 11))
    assert [r.turn_id for r in bot_turns(store, tenant, "faq", last=2)] == ["299-9", "299-10"]
    assert len(bot_turns(store, tenant, "faq", since=now + 100, until=now + 200)) == 1000
