"""An event store written by botyard at commit 1f88b70, before stable topics, read by today's code.

``tests/data/events-v1f88b70.sqlite`` was written by that commit's code
(``tests/data/make_old_events.py``): every stored topic is a module path. The ``.json``
beside it is what that code read back from it. Each test opens a copy (the file itself is
never written) and checks today's reads against both the old reads and the facts the
script recorded.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
import time
from pathlib import Path

import msgpack
import pytest
from eventsourcing.application import project_aggregate

from botyard.actors.conversation import ConversationActor
from botyard.actors.messages import Classified, ClassifiedTurn, TurnWork
from botyard.dialogue.state import DialogueState
from botyard.events.activity import Activity
from botyard.events.conversation import conversation_uuid
from botyard.events.store import EventStore
from botyard.events.tenant import digest
from botyard.events.turns import bot_turns, conversation_turns
from botyard.models.definition import load_bot
from botyard.protocol import TurnRequest

DATA = Path(__file__).resolve().parent.parent / "data"
OLD = DATA / "events-v1f88b70.sqlite"
EXPECTED = json.loads((DATA / "events-v1f88b70.json").read_text())
EXAMPLE = Path(__file__).resolve().parent.parent / "data" / "shop-support-v1f88b70.yml"
"""The example bot as it was at 1f88b70 (no dialogue section), which the old replies came from."""
UNRECORDED = ("fallback_reason", "score")
NO_DIALOGUE = {"slots": {}, "form": None, "asked": None, "handed_off": False}
TENANT, BOT = "acme-shop", "support"
S1, S2 = "1" * 32, "2" * 32


def _script():
    spec = importlib.util.spec_from_file_location("make_old_events", DATA / "make_old_events.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKER = _script()
plain = MAKER.plain


@pytest.fixture
def store(tmp_path):
    db = tmp_path / "events.db"
    shutil.copy(OLD, db)
    s = EventStore(f"sqlite:///{db}", tmp_path)
    yield s
    s.close()


def stored_topics(store, aggregate_id) -> list[str]:
    return [e.topic for e in store.recorder.select_events(aggregate_id)]


def test_the_file_is_what_the_old_code_wrote():
    assert OLD.stat().st_size < 200_000
    with sqlite3.connect(f"file:{OLD}?mode=ro", uri=True) as db:
        topics = {t for (t,) in db.execute("SELECT DISTINCT topic FROM stored_events")}
        (snapshot,) = db.execute("SELECT originator_version, topic, state FROM stored_snapshots").fetchall()
    assert sorted(topics) == EXPECTED["topics"] and len(topics) == 10
    assert all(t.startswith("botyard.events.") for t in topics)
    state = msgpack.unpackb(snapshot[2], raw=False, ext_hook=lambda code, data: data)
    assert (snapshot[0], snapshot[1]) == (4, "eventsourcing.domain:Snapshot")
    assert state["topic"] == "botyard.events.conversation:Conversation"


def old_form(row) -> dict:
    """A row as the old code showed it: today's rows add ``dialogue`` (no events, for old turns)."""
    out = row.to_dict()
    assert out.pop("dialogue") == []
    return out


def test_every_turn_is_intact(store):
    for cid, rows in EXPECTED["conversation_turns"].items():
        assert [old_form(r) for r in conversation_turns(store, TENANT, BOT, cid)] == rows
    c1 = conversation_turns(store, TENANT, BOT, "c-1")
    assert [r.turn for r in c1] == [1, 2, 3, 4, 5, 6]
    assert [r.turn_id for r in c1] == ["c1-t1", "c1-t2", "c1-t3", "c1-t4", "c1-t5", "c1-t6"]  # the retry recorded nothing
    assert [r.user_text for r in c1][:3] == ["hello there", "has order 48213 been sent", "how long to ship to norway"]
    assert [r.intent for r in c1] == ["greeting", "order_status", "delivery_times", "greeting", "thanks", "goodbye"]
    assert [r.fallback for r in c1] == [False, False, False, True, False, False]
    assert [r.snapshot for r in c1] == [S1, S1, S1, S2, S2, S2]
    assert c1[1].entities == [MAKER.ORDER] and c1[2].entities == [MAKER.CITY] and c1[0].entities == []
    assert c1[2].reply == "Delivery to norway takes 2-4 working days."
    assert {r.node for r in c1} == {"node-a"} and all(r.received_at > 0 and r.recorded_at >= r.received_at for r in c1)
    c2 = conversation_turns(store, TENANT, BOT, "c-2")
    assert [(r.turn, r.turn_id, r.intent) for r in c2] == [(1, "c2-t1", "opening_hours"), (2, None, "goodbye")]
    (v1,) = conversation_turns(store, TENANT, BOT, "c-v1")  # stored as TurnRecorded v1: no entities
    assert (v1.user_text, v1.entities, v1.turn_id) == ("hi from v1", [], "v1-t1")


def test_bot_turns_read_every_old_turn(store):
    assert [{**old_form(r), "position": r.position} for r in bot_turns(store, TENANT, BOT)] == EXPECTED["bot_turns"]
    last = bot_turns(store, TENANT, BOT, last=3)
    assert [{**old_form(r), "position": r.position} for r in last] == EXPECTED["bot_turns_last_3"]
    assert [old_form(r) for r in bot_turns(store, TENANT, "sales")] == EXPECTED["sales_turns"]
    assert len(EXPECTED["bot_turns"]) == 6 + 2 + 1


EMPTY_DIALOGUE = DialogueState().to_dict()
"""Conversations recorded before dialogue existed have the empty dialogue state."""


def test_conversations_rebuild_with_and_without_their_snapshot(store):
    c1 = conversation_uuid(TENANT, BOT, "c-1")
    snapshots = list(store.snapshots.get(c1))
    assert [s.originator_version for s in snapshots] == [4]
    for cid, state in EXPECTED["conversations"].items():
        from_snapshot = store.load_conversation(TENANT, BOT, cid)
        from_events = project_aggregate(None, store.events.get(conversation_uuid(TENANT, BOT, cid)))
        assert plain(from_snapshot.state()) == plain(from_events.state()) == {**state, "dialogue": EMPTY_DIALOGUE}
        assert from_snapshot.dialogue_view() == {"slots": {}, "form": None, "asked": None, "handed_off": False}
    at_2 = plain(store.conversation_at(TENANT, BOT, "c-1", 2).state())  # before the snapshot
    assert at_2 == {**EXPECTED["c-1_at_2"], "dialogue": EMPTY_DIALOGUE}
    assert store.load_conversation(TENANT, BOT, "c-1").find_turn("c1-t3")["reply"] == "Delivery to norway takes 2-4 working days."


def test_the_bot_its_aliases_and_moves(store):
    bot = store.bot(TENANT, BOT)
    assert plain(bot.state()) == EXPECTED["bot"]
    assert bot.aliases == {"production": S1, "staging": S2} and bot.history == {"production": [], "staging": []}
    assert plain([bot.definition, bot.definition_hash]) == EXPECTED["bot_definition"]
    moves, _ = store.alias_moves()
    assert plain([vars(e) for e in moves]) == EXPECTED["alias_moves"]
    assert [(m.alias, m.kind, m.target) for m in moves] == [
        ("production", "promote", S1), ("staging", "promote", S2), ("production", "promote", S2),
        ("production", "promote", "3" * 32), ("production", "rollback", S2), ("production", "rollback", S1),
    ]
    assert plain(store.bot_refs()) == EXPECTED["bot_refs"] == [[TENANT, BOT]]


def test_tenant_tokens_and_labels(store):
    tenant = store.tenant(TENANT)
    assert plain(tenant.tokens) == EXPECTED["tenant_tokens"]
    assert tenant.accepts(MAKER.TOKENS[0]) and not tenant.accepts(MAKER.TOKENS[1])
    labels = store.labels(TENANT, BOT)
    assert plain(labels.labels) == EXPECTED["labels"] and labels.of("c-1", 5) == "thanks"


def test_the_activity_projection(store):
    expected = EXPECTED["activity"]
    since, until = expected["window"]
    activity = Activity(store)
    assert plain(activity.bots()) == expected["bots"]
    assert plain(activity.stats(TENANT, BOT, since=since, until=until)) == expected["stats"]
    assert plain(activity.conversations(TENANT, BOT)) == expected["conversations"]
    assert plain(activity.review(TENANT, BOT)) == expected["review"]
    assert [r["turn"] for r in activity.review(TENANT, BOT)] == [4]  # turn 5 was low but is labelled


def _run_actor(store, batches):
    """Turns through a real conversation actor, as the old script sent them; the reply bodies it sent.
    ``batches``: (snapshot, [(conversation id, bot, text, turn id, intent, confidence, fallback, entities)])."""
    sent = []

    class Outbox:
        def send(self, items):
            for o in items:
                body = msgpack.unpackb(o.body, raw=False)
                if "error" not in body:  # the reply fields dialogue added, empty for a bot without dialogue
                    assert {k: body.pop(k) for k in NO_DIALOGUE} == NO_DIALOGUE
                    # the reply fields issue 26 added, never recorded: nil for a turn classified without them
                    assert {k: body.pop(k) for k in UNRECORDED} == dict.fromkeys(UNRECORDED)
                sent.append(body)

    definition = load_bot(EXAMPLE)
    actor = ConversationActor.start(store, Outbox(), node_id="node-a", idle_seconds=600, max_resident=100)
    try:
        for snapshot, batch in batches:
            actor.ask(Classified(tuple(
                ClassifiedTurn(
                    TurnWork(TurnRequest(TENANT, bot, cid, text, False, turn_id, "production"), f"_INBOX.{cid}", time.time()),
                    intent, confidence, snapshot, definition, tuple(entities), fallback,
                )
                for cid, bot, text, turn_id, intent, confidence, fallback, entities in batch
            )))
    finally:
        actor.stop()
    return sent


def test_todays_actor_sends_the_replies_the_old_one_sent(tmp_path):
    """The same turns through today's conversation actor, into a fresh store: the same reply bodies."""
    store = EventStore(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path)
    try:
        sent = _run_actor(store, [(S2 if b >= 4 else S1, batch) for b, batch in enumerate(MAKER.BATCHES)])
    finally:
        store.close()
    assert sent == EXPECTED["replies"]


def test_a_new_turn_on_an_old_conversation(store):
    c1 = conversation_uuid(TENANT, BOT, "c-1")
    retry, new = _run_actor(store, [
        (S1, [("c-1", BOT, "how long to ship to norway", "c1-t3", "delivery_times", 0.84, False, [MAKER.CITY])]),  # old id
        (S1, [("c-1", BOT, "hello again", "c1-t7", "greeting", 0.9, False, [])]),
    ])
    assert retry == EXPECTED["replies"][3]  # the old turn's reply, again
    assert (new["turn"], new["turn_id"]) == (7, "c1-t7")

    rows = conversation_turns(store, TENANT, BOT, "c-1")
    assert [old_form(r) for r in rows[:6]] == EXPECTED["conversation_turns"]["c-1"]
    assert (rows[6].turn, rows[6].user_text, rows[6].entities) == (7, "hello again", [])
    topics = stored_topics(store, c1)
    assert topics[:7] == ["botyard.events.conversation:Conversation.Started"] + [
        "botyard.events.conversation:Conversation.TurnRecorded"] * 6
    assert topics[7:] == ["botyard:Conversation.TurnRecorded"]
    assert [r.turn for r in bot_turns(store, TENANT, BOT) if r.conversation_id == "c-1"] == [1, 2, 3, 4, 5, 6, 7]
    assert bot_turns(store, TENANT, BOT, last=1)[0].user_text == "hello again"
    activity = Activity(store)
    assert {(b["tenant"], b["bot"]): b["turns"] for b in activity.bots()}[(TENANT, BOT)] == 10
    assert activity.conversations(TENANT, BOT)[0]["last_text"] == "hello again"

    store.snapshot_conversation(c1, 8)  # a new snapshot of a conversation begun under old topics
    (snapshot,) = [s for s in store.snapshots.get(c1) if s.originator_version == 8]
    assert snapshot.topic == "botyard:Conversation"
    again = store.load_conversation(TENANT, BOT, "c-1")
    assert again.turns == 7 and again.state() == project_aggregate(None, store.events.get(c1)).state()
    assert [t["turn_id"] for t in again.recent][-2:] == ["c1-t6", "c1-t7"]


def test_a_new_alias_move_on_an_old_bot(store):
    store.change_bot(TENANT, BOT, lambda b: b.promote("production", "4" * 32, actor="erin", reason="new"))
    moves, _ = store.alias_moves()
    assert [m.target for m in moves][-2:] == [S1, "4" * 32]
    assert store.bot_events(TENANT, BOT)[-1].TOPIC == "botyard:Bot.AliasMoved"
    assert stored_topics(store, store.bot(TENANT, BOT).id)[-1] == "botyard:Bot.AliasMoved"
    assert store.bot(TENANT, BOT).history["production"] == [S1]
    store.change_tenant(TENANT, lambda t: t.issue(digest("byt_acme-shop_" + "c" * 48), "new", "erin"))
    assert len(store.tenant(TENANT).tokens) == 2
    assert [r["kind"] for r in Activity(store).stats(TENANT, BOT, since=0, until=1)["moves"]][-2:] == ["rollback", "promote"]
