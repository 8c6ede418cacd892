"""Several processes writing one SQLite file: each write transaction takes the writer lock
(``flock`` beside the database), so none waits in SQLite's busy handler and none fails."""

import multiprocessing
import threading
import time
import uuid

import pytest

from botyard.events import Conversation, EventStore
from botyard.events.errors import EventStoreError

WRITERS, CONVERSATIONS, TURNS = 3, 20, 5


def write(db: str, writer: int) -> None:
    store = EventStore(f"sqlite:///{db}", "unused")
    try:
        for c in range(CONVERSATIONS):
            conv = Conversation(tenant="acme", bot="faq", conversation_id=f"w{writer}-c{c}")
            for n in range(1, TURNS + 1):
                conv.record_turn(
                    turn=n, turn_id=f"t{n}", user_text=f"text {n}", intent="greet", confidence=0.9, reply="hello",
                    fallback=False, snapshot="s" * 32, node=f"n{writer}", received_at=time.time(), entities=[],
                )
                store.save_all([conv])  # one transaction per turn: the most contention
    finally:
        store.close()


def test_processes_share_one_file_without_losing_a_write(tmp_path):
    db = str(tmp_path / "events.db")
    EventStore(f"sqlite:///{db}", tmp_path).close()  # tables first
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=write, args=(db, w)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * WRITERS
    store = EventStore(f"sqlite:///{db}", tmp_path)
    try:
        for w in range(WRITERS):
            for c in range(CONVERSATIONS):
                turns = store.turns("acme", "faq", f"w{w}-c{c}")
                assert [t.turn for t in turns] == list(range(1, TURNS + 1))
                assert {t.node for t in turns} == {f"n{w}"}
        total = len(store.recorder.select_notifications(1, 10_000))
        assert total == WRITERS * CONVERSATIONS * (TURNS + 1)  # Started + one event per turn, nothing twice
    finally:
        store.close()
    assert (tmp_path / "events.db.writer").exists()


def test_slow_writes_are_timed(tmp_path):
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}", tmp_path)
    try:
        store.take_write_times()
        lock = store.factory.datastore.writer
        conv = Conversation(tenant="acme", bot="faq", conversation_id=uuid.uuid4().hex)
        started, done = threading.Event(), threading.Event()

        def commit():
            started.set()
            store.save_all([conv])
            done.set()

        with lock.held():  # this thread holds the writer lock while another one commits
            threading.Thread(target=commit, daemon=True).start()
            assert started.wait(10)
            time.sleep(0.2)
            assert not done.is_set()  # the commit waits for the lock
        assert done.wait(10)
        times = store.take_write_times()
        assert times and times[-1][1] >= times[-1][0] > 0
        assert store.load_conversation("acme", "faq", conv.conversation_id) is not None
    finally:
        store.close()



def test_synchronous_is_an_option_of_the_sqlite_url(tmp_path):
    for option, expected in (("", 2), ("?synchronous=full", 2), ("?synchronous=NORMAL", 1)):
        store = EventStore(f"sqlite:///{tmp_path / 'events.db'}{option}", tmp_path)
        try:
            conv = Conversation(tenant="acme", bot="faq", conversation_id=uuid.uuid4().hex)
            store.save_all([conv])  # the writer's connection gets the setting on its first write
            with store.factory.datastore.get_connection(commit=True) as conn:
                assert conn._sqlite_conn.execute("PRAGMA synchronous").fetchone()[0] == expected
            assert store.load_conversation("acme", "faq", conv.conversation_id) is not None
        finally:
            store.close()
    for bad in ("?synchronous=off", "?journal_mode=delete"):
        with pytest.raises(EventStoreError, match="synchronous="):
            EventStore(f"sqlite:///{tmp_path / 'events.db'}{bad}", tmp_path)
