"""SQLite for several writers: one write transaction at a time, handed over at once.

SQLite lets one transaction write at a time. A writer that finds the lock taken is put
to sleep by SQLite's busy handler for 1, 2, 5, 10, ... up to 100 ms between tries, so
under steady contention (two nodes on one file, or a node's conversation actor and its
snapshotter) a commit can wait far longer than the lock was held, and a writer that keeps
losing the race waits for seconds. Here every write transaction first takes a lock of
this process (threads) and then an advisory ``flock`` on ``<database>.writer`` (other
processes): a waiter blocks in the kernel and wakes the moment the holder lets go, so
SQLite never sees a second writer. Readers are not affected (WAL mode).

Each write is also timed (waiting for the lock, and the whole transaction) so that a
slow commit is visible: :func:`take_write_times`, reported in heartbeats and metrics.

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
from typing import Iterator

from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore, SQLiteFactory

TIMED_FROM = 0.005
"""Write transactions shorter than this (seconds) are not kept for :func:`take_write_times`."""

_write_times: deque[tuple[float, float]] = deque(maxlen=1000)


def take_write_times() -> list[tuple[float, float]]:
    """(seconds waiting for the writer lock, seconds in all) of this process's slow writes since the last call."""
    out = []
    while _write_times:
        out.append(_write_times.popleft())
    return out


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
    def __init__(self, db_name: str, **kwargs) -> None:
        super().__init__(db_name, **kwargs)
        memory = self.pool.is_sqlite_memory_mode
        self.writer = None if memory else _WriterLock(db_name.removeprefix("file:").split("?")[0])

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[SQLiteCursor]:
        if not commit or self.writer is None:
            with super().transaction(commit=commit) as cursor:
                yield cursor
            return
        started = time.perf_counter()
        with self.writer.held() as waited:
            with super().transaction(commit=True) as cursor:
                yield cursor
        took = time.perf_counter() - started
        if took >= TIMED_FROM:
            _write_times.append((waited, took))

    def close(self) -> None:
        super().close()
        writer = getattr(self, "writer", None)  # also from __del__ after a failed __init__
        if writer is not None:
            writer.close()


class Factory(SQLiteFactory):
    """The library's SQLite factory with :class:`WriterLockedDatastore` as its datastore."""

    def __init__(self, env) -> None:
        super().__init__(env)
        plain = self.datastore  # made by the library's __init__; it has opened no connection yet
        self.datastore = WriterLockedDatastore(
            plain.pool.db_name,
            lock_timeout=plain.pool.lock_timeout,
            single_row_tracking=plain.single_row_tracking,
            originator_id_type=plain.originator_id_type,
        )
