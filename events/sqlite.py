"""SQLite for several writers: one write transaction at a time, handed over at once.

SQLite lets one transaction write at a time. A writer that finds the lock taken is put
to sleep by SQLite's busy handler for 1, 2, 5, 10, ... up to 100 ms between tries, so
under steady contention (two nodes on one file, or a node's conversation actor and its
snapshotter) a commit can wait far longer than the lock was held, and a writer that keeps
losing the race waits for seconds. Here every write transaction first takes a lock of
this process (threads) and then an advisory ``flock`` on ``<database>.writer`` (other
processes): a waiter blocks in the kernel and wakes the moment the holder lets go, so
SQLite never sees a second writer. Readers are not affected (WAL mode).

``sqlite:///events.db?synchronous=normal`` trades the durability of the last commits
against a power cut for commits without an fsync (:data:`SYNCHRONOUS`).

Each write is also timed (waiting for the lock, and the whole transaction) so that a
slow commit is visible: :meth:`WriterLockedDatastore.take_write_times` (the event store's
``take_write_times``), which the node's heartbeat reports and its metrics count.

Its application recorder also keeps the ``botyard_turn_ids`` table, written in each
commit's transaction (:mod:`botyard.events.idempotency`).

Selected with ``PERSISTENCE_MODULE=botyard.events.sqlite:Factory``
(:func:`botyard.events.store.store_env` does).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Any, Iterator, Sequence
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore, SQLiteFactory

from botyard.events.idempotency import TURN_IDS_TABLE

SYNCHRONOUS = ("full", "normal")
"""``full`` (SQLite's default): every commit waits for the WAL to reach the disk, so an
acknowledged turn survives a power cut. ``normal``: commits reach the operating system
only and the disk at checkpoints; an acknowledged turn survives the node's process being
killed, not the machine losing power (the trade Rails makes by default for SQLite)."""
TIMED_FROM = 0.005
"""Write transactions shorter than this (seconds) are not kept for ``take_write_times``."""
KEPT_WRITE_TIMES = 1000


class _WriterLock:
    """This process's threads, then other processes, by ``flock`` on a file beside the database."""

    def __init__(self, db_name: str) -> None:
        self.path = f"{db_name}.writer"
        self._threads = threading.Lock()
        self._fd: int | None = None

    @contextmanager
    def held(self) -> Iterator[float]:
        started = time.perf_counter()
        with self._threads:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield time.perf_counter() - started
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._threads:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class WriterLockedDatastore(SQLiteDatastore):
    def __init__(self, db_name: str, *, synchronous: str = "full", **kwargs) -> None:
        super().__init__(db_name, **kwargs)
        memory = self.pool.is_sqlite_memory_mode
        self.writer = None if memory else _WriterLock(db_name.removeprefix("file:").split("?")[0])
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}, not {synchronous!r}")
        self.synchronous = synchronous
        self._write_times: deque[tuple[float, float]] = deque(maxlen=KEPT_WRITE_TIMES)

    def take_write_times(self) -> list[tuple[float, float]]:
        """(seconds waiting for the writer lock, seconds in all) of the slow writes since the last call."""
        out = []
        while self._write_times:
            out.append(self._write_times.popleft())
        return out

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[SQLiteCursor]:
        if not commit or self.writer is None:
            with super().transaction(commit=commit) as cursor:
                yield cursor
            return
        started = time.perf_counter()
        with self.writer.held() as waited, self.get_connection(commit=True) as conn:
            if getattr(conn, "botyard_synchronous", "full") != self.synchronous:
                conn._sqlite_conn.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
                conn.botyard_synchronous = self.synchronous
            with conn.transaction(commit=True) as cursor:
                yield cursor
        took = time.perf_counter() - started
        if took >= TIMED_FROM:
            self._write_times.append((waited, took))

    def close(self) -> None:
        super().close()
        writer = getattr(self, "writer", None)  # also from __del__ after a failed __init__
        if writer is not None:
            writer.close()


class TurnIdRecorder(SQLiteApplicationRecorder):
    """The library's application recorder, plus the ``botyard_turn_ids`` table: each turn's
    ``(originator_id, turn_id) -> version`` row is inserted in its events' transaction, so a
    turn id recorded before fails the whole commit (``IntegrityError``)."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name)
        self.insert_turn_ids_statement = f"INSERT INTO {TURN_IDS_TABLE} VALUES (?,?,?)"
        self.select_turn_id_statement = f"SELECT version FROM {TURN_IDS_TABLE} WHERE originator_id=? AND turn_id=?"

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {TURN_IDS_TABLE} (originator_id TEXT NOT NULL, turn_id TEXT NOT NULL, "
            "version INTEGER NOT NULL, PRIMARY KEY (originator_id, turn_id)) WITHOUT ROWID",
        ]

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        returning = super()._insert_events(c, stored_events, **kwargs)
        rows = kwargs.get("turn_ids")
        if rows:
            c.executemany(
                self.insert_turn_ids_statement, [(o.hex if isinstance(o, UUID) else o, t, v) for o, t, v in rows]
            )
        return returning

    def turn_id_version(self, originator_id: UUID, turn_id: str) -> int | None:
        """The version of the event that recorded this turn id in this aggregate, if any."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.select_turn_id_statement, (originator_id.hex if isinstance(originator_id, UUID) else originator_id, turn_id))
            row = c.fetchone()
        return None if row is None else int(row[0])


class Factory(SQLiteFactory):
    """The library's SQLite factory with :class:`WriterLockedDatastore` as its datastore and
    :class:`TurnIdRecorder` as its application recorder."""

    application_recorder_class = TurnIdRecorder

    SQLITE_SYNCHRONOUS = "SQLITE_SYNCHRONOUS"

    def __init__(self, env) -> None:
        super().__init__(env)
        plain = self.datastore  # made by the library's __init__; it has opened no connection yet
        self.datastore = WriterLockedDatastore(
            plain.pool.db_name,
            synchronous=(self.env.get(self.SQLITE_SYNCHRONOUS) or "full").lower(),
            lock_timeout=plain.pool.lock_timeout,
            single_row_tracking=plain.single_row_tracking,
            originator_id_type=plain.originator_id_type,
        )
