"""Exactly once per turn_id, however old the turn (``botyard_turn_ids``), on SQLite and
PostgreSQL; and nodes opening one PostgreSQL store at the same moment all come up."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import msgpack
import pytest

from botyard.actors.conversation import ConversationActor
from botyard.actors.messages import Classified, ClassifiedTurn, TurnWork
from botyard.events import Conversation, EventStore, IntegrityError
from botyard.events.conversation import RECENT_TURNS
from botyard.events.idempotency import TURN_IDS_TABLE
from botyard.models.definition import load_bot
from botyard.protocol import TurnRequest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "shop-support.yml"
OLD = ROOT / "tests" / "data" / "events-v1f88b70.sqlite"


def turn(conv, n, turn_id, text="hi"):
    conv.record_turn(
        turn=n, turn_id=turn_id, user_text=text, intent="greet", confidence=0.9, reply=f"reply {n}",
        fallback=False, snapshot="s" * 32, node="n1", received_at=time.time(), entities=[],
    )


@pytest.fixture
def store(events_url, tmp_path):
    s = EventStore(events_url, tmp_path)
    yield s
    s.close()


def test_a_turn_id_is_recorded_once_however_old(store):
    cid = uuid.uuid4().hex
    conv = Conversation(tenant="acme", bot="faq", conversation_id=cid)
    turn(conv, 1, "first")
    store.save_all([conv])
    for n in range(2, RECENT_TURNS + 6):  # "first" leaves the window
        turn(conv, n, f"t{n}")
        store.save_all([conv])
    assert conv.find_turn("first") is None

    again = store.load_conversation("acme", "faq", cid)
    turn(again, again.turns + 1, "first")  # a retry of turn 1 recorded as a new turn: refused
    with pytest.raises(IntegrityError):
        store.save_all([again])
    found = store.recorded_turn(conv.id, "first")
    assert (found.turn, found.reply, found.originator_version) == (1, "reply 1", 2)
    assert store.recorded_turn(conv.id, "never") is None
    assert [e.turn_id for e in store.turns("acme", "faq", cid)].count("first") == 1

    other = Conversation(tenant="acme", bot="faq", conversation_id=uuid.uuid4().hex)
    turn(other, 1, "first")  # turn ids are per conversation
    store.save_all([other])
    assert store.recorded_turn(other.id, "first").turn == 1


def test_a_duplicate_fails_the_whole_group_commit(store):
    a = Conversation(tenant="acme", bot="faq", conversation_id=uuid.uuid4().hex)
    turn(a, 1, "a1")
    store.save_all([a])
    stale = store.load_conversation("acme", "faq", a.conversation_id)
    turn(a, 2, "a2")
    store.save_all([a])  # another node's write
    turn(stale, 2, "a2")  # the stale copy records the same turn id at the same version
    b = Conversation(tenant="acme", bot="faq", conversation_id=uuid.uuid4().hex)
    turn(b, 1, "b1")
    with pytest.raises(IntegrityError):
        store.save_all([b, stale])
    assert store.load_conversation("acme", "faq", b.conversation_id) is None  # nothing of the batch committed
    assert store.recorded_turn(b.id, "b1") is None


def test_turns_without_ids_and_application_save_record_rows_as_needed(store):
    conv = Conversation(tenant="acme", bot="faq", conversation_id=uuid.uuid4().hex)
    turn(conv, 1, None)
    turn(conv, 2, None)  # no turn id: nothing to deduplicate
    turn(conv, 3, "x")
    store.save(conv)  # the Application's save path records turn ids too
    assert store.recorded_turn(conv.id, "x").turn == 3
    dup = store.load_conversation("acme", "faq", conv.conversation_id)
    turn(dup, 4, "x")
    with pytest.raises(IntegrityError):
        store.save(dup)


def _actor(store, node, sent):
    class Outbox:
        def send(self, items):
            sent.extend(msgpack.unpackb(o.body, raw=False) for o in items)

    return ConversationActor.start(store, Outbox(), node_id=node, idle_seconds=600, max_resident=100)


def _say(actor, cid, turn_id, definition, text="where is my order"):
    work = TurnWork(TurnRequest("acme-shop", "support", cid, text, False, turn_id, "production"), f"_INBOX.{turn_id}", time.time())
    actor.ask(Classified((ClassifiedTurn(work, "order_status", 0.9, "s" * 32, definition),)))


def test_a_paused_nodes_backlog_is_answered_from_the_store(store):
    """Node A holds a conversation, pauses; node B records 20 more turns; A resumes with a
    backlog of retries of B's turns (older than A's copy knows of and than the window)."""
    definition = load_bot(EXAMPLE)
    sent_a, sent_b = [], []
    a, b = _actor(store, "node-a", sent_a), _actor(store, "node-b", sent_b)
    cid = uuid.uuid4().hex
    try:
        _say(a, cid, "t1", definition)  # A has the conversation resident at turn 1
        for n in range(2, RECENT_TURNS + 6):
            _say(b, cid, f"t{n}", definition)
        for n in (2, 3, RECENT_TURNS + 5):  # out of the window, just in it, the newest
            _say(a, cid, f"t{n}", definition)
        _say(a, cid, "t-new", definition)
    finally:
        a.stop()
        b.stop()
    by_id = {r["turn_id"]: r for r in sent_b}
    for r in sent_a[1:4]:
        assert r["turn"] == by_id[r["turn_id"]]["turn"] and r["text"] == by_id[r["turn_id"]]["text"]
    assert len(sent_a) == 5 and sent_a[4]["turn"] == RECENT_TURNS + 6 and sent_a[4]["turn_id"] == "t-new"
    ids = [e.turn_id for e in store.turns("acme-shop", "support", cid)]
    assert len(ids) == len(set(ids)) == RECENT_TURNS + 6


def test_an_old_store_gets_the_table_and_its_old_turns_keep_the_window(tmp_path):
    """Turns recorded before the table existed have no rows (no backfill): a retry of one
    is caught by the 16-turn window only; turns recorded since are caught however old."""
    import sqlite3

    db = tmp_path / "events.db"
    shutil.copy(OLD, db)
    with sqlite3.connect(db) as conn:
        assert not conn.execute("SELECT name FROM sqlite_master WHERE name=?", (TURN_IDS_TABLE,)).fetchall()
    s = EventStore(f"sqlite:///{db}", tmp_path)
    try:
        c1 = s.load_conversation("acme-shop", "support", "c-1")
        assert c1.find_turn("c1-t1") is not None and s.recorded_turn(c1.id, "c1-t1") is None
        turn(c1, c1.turns + 1, "c1-new")
        s.save_all([c1])
        assert s.recorded_turn(c1.id, "c1-new").turn == c1.turns
    finally:
        s.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute(f"SELECT turn_id FROM {TURN_IDS_TABLE}").fetchall() == [("c1-new",)]


OPEN_AT_ONCE = """
import sys, time
from botyard.events.store import EventStore
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
s = EventStore(sys.argv[1])
s.close()
print("opened")
"""


def test_nodes_opening_one_fresh_postgres_store_at_once_all_come_up(own_postgres_url, tmp_path):
    """Each open runs the library's CREATE TABLE/TYPE/OR REPLACE FUNCTION statements; at the
    same moment they collided ("tuple concurrently updated") before the advisory lock."""
    script = tmp_path / "open.py"
    script.write_text(OPEN_AT_ONCE)
    at = time.time() + 4.0  # every process has imported by then: they open together
    procs = [
        subprocess.Popen([sys.executable, str(script), own_postgres_url, repr(at)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        for _ in range(12)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    failed = [err for p, (_, err) in zip(procs, outs) if p.returncode != 0]
    assert not failed, failed[0]
    assert all(out.strip() == "opened" for out, _ in outs)
    for _ in range(2):  # and again, on the existing tables
        at = time.time() + 3.0
        procs = [subprocess.Popen([sys.executable, str(script), own_postgres_url, repr(at)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=tmp_path) for _ in range(12)]
        outs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0] * 12, next(err for p, (_, err) in zip(procs, outs) if p.returncode)


@pytest.mark.parametrize("stopped", ["idle in transaction", "mid-pipeline"])
def test_a_writer_stopped_holding_the_events_lock_is_terminated(stopped, own_postgres_url, tmp_path):
    """A session holding the events table's lock and waiting for its client (a node stopped
    mid-commit) would stall every commit until it resumed: it is terminated instead. Stopped
    inside a pipeline (no Sync sent) it shows as ``active`` on ``ClientRead``, and
    ``idle_in_transaction_session_timeout`` never ends it."""
    import psycopg

    from botyard.events.postgres import STUCK_WRITER_SECONDS

    store = EventStore(own_postgres_url, tmp_path)
    stuck = psycopg.connect(own_postgres_url, autocommit=stopped == "mid-pipeline")
    pid = stuck.info.backend_pid
    try:
        if stopped == "mid-pipeline":
            stuck.pipeline().__enter__()  # never left: the Sync is never sent
            stuck.execute("BEGIN")
        stuck.execute("LOCK TABLE botyard_events IN EXCLUSIVE MODE")  # and then nothing
        conv = Conversation(tenant="acme", bot="faq", conversation_id=uuid.uuid4().hex)
        turn(conv, 1, "t1")
        started = time.monotonic()
        store.save_all([conv])
        took = time.monotonic() - started
        assert STUCK_WRITER_SECONDS <= took < STUCK_WRITER_SECONDS + 6, took
        assert store.recorded_turn(conv.id, "t1").turn == 1
        with psycopg.connect(own_postgres_url) as watcher:
            assert not watcher.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchall()  # terminated
    finally:
        with contextlib.suppress(Exception):
            stuck.close()
        store.close()
