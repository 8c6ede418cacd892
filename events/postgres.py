"""PostgreSQL for several nodes: the library's factory, with table creation serialized and
the ``botyard_turn_ids`` table.

Every open of an event store runs the library's schema statements (``CREATE TABLE IF NOT
EXISTS``, ``CREATE TYPE``, ``CREATE OR REPLACE FUNCTION``, ...). Run by two processes at
the same moment they collide in the system catalogs: ``tuple concurrently updated`` (the
function's ``pg_proc`` row, replaced by both) or a duplicate key in ``pg_type`` (a table or
type created by both), and the node fails to start. Here each recorder's table creation
holds a transaction-independent advisory lock (``pg_advisory_lock``, on one of the pool's
connections, for the whole creation), so the openers of one database take turns; each
waits milliseconds for the one before.

The application recorder also keeps ``botyard_turn_ids`` (:mod:`botyard.events.idempotency`),
inserted in the same pipelined transaction as the events.

A writer stopped mid-commit (SIGSTOP) holds the events table's lock, which every commit
takes (the library's, for gap-free notification order), and so would stall every node
until it resumes: a commit that waits :data:`LOCK_TIMEOUT` seconds terminates a holder
waiting on its client (stopped) for :data:`STUCK_WRITER_SECONDS` and tries again.

Selected with ``PERSISTENCE_MODULE=botyard.events.postgres:Factory``
(:func:`botyard.events.store.store_env` does).
"""

from __future__ import annotations

import contextlib
import logging
import time
from contextlib import contextmanager
from typing import Any, Iterator, Sequence
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore, PostgresFactory
from psycopg import Cursor
from psycopg.errors import LockNotAvailable
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier, Literal

from botyard.events.idempotency import TURN_IDS_TABLE

log = logging.getLogger(__name__)

SCHEMA_LOCK = 0x626F7479_61726431  # "botyard1"
"""``pg_advisory_lock`` key (one per database) held while an opener creates the tables."""
LOCK_TIMEOUT = 2
"""Seconds a commit waits for the events table's lock before looking for a stuck holder
(unless ``POSTGRES_LOCK_TIMEOUT`` says otherwise; 0 waits for ever). Commits hold it for
milliseconds."""
STUCK_WRITER_SECONDS = 3.0
"""A session waiting on its client this long while holding the events table's lock is
a stopped process: it is terminated (:meth:`TurnIdRecorder.reap_stuck_writers`)."""
INSERT_ATTEMPTS = 10
"""As the library's ``@retry`` on ``insert_events``."""
_library_insert_events = PostgresApplicationRecorder.insert_events.__wrapped__
"""The library's insert without its retry decorator (this recorder retries)."""


class TurnIdRecorder(PostgresApplicationRecorder):
    """The library's application recorder, plus the ``botyard_turn_ids`` table: each turn's
    ``(originator_id, turn_id) -> version`` row is inserted in its events' transaction, so a
    turn id recorded before fails the whole commit (``IntegrityError``)."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema, table = Identifier(self.datastore.schema), Identifier(TURN_IDS_TABLE)
        id_type = Identifier(self.datastore.originator_id_type)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.{1} (originator_id {2} NOT NULL, turn_id text NOT NULL, "
                "version bigint NOT NULL, PRIMARY KEY (originator_id, turn_id))"
            ).format(schema, table, id_type)
        )
        self.insert_turn_ids_statement = SQL(
            "INSERT INTO {0}.{1} (originator_id, turn_id, version) "
            "SELECT * FROM unnest(%s::{2}[], %s::text[], %s::bigint[])"
        ).format(schema, table, id_type)
        self.select_turn_id_statement = SQL("SELECT version FROM {0}.{1} WHERE originator_id = %s AND turn_id = %s").format(
            schema, table
        )

        self.reap_stuck_writers_statement = SQL(
            "SELECT a.pid, a.application_name, pg_terminate_backend(a.pid) AS terminated "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'relation' AND l.relation = {0}::regclass AND l.mode = 'ExclusiveLock' AND l.granted "
            "AND a.pid <> pg_backend_pid() "
            "AND (a.state LIKE 'idle in transaction%%' OR a.state = 'active' AND a.wait_event = 'ClientRead') "
            "AND a.state_change < now() - make_interval(secs => %s)"
        ).format(Literal(f'"{self.datastore.schema}"."{self.events_table_name}"'))

    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        # The library's statements first (lock timeout, table lock, notify, events), then the
        # turn ids, in the same pipelined transaction: under the table lock, so the insert
        # never waits on another transaction's uncommitted row.
        super()._insert_stored_events(curs, stored_events, **kwargs)
        rows = kwargs.get("turn_ids")
        if rows:
            with curs.connection.cursor() as turn_ids:  # curs keeps the events' RETURNING rows
                turn_ids.execute(
                    self.insert_turn_ids_statement,
                    ([o for o, _, _ in rows], [t for _, t, _ in rows], [v for _, _, v in rows]),
                    prepare=True,
                )

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """The library's insert, retried like the library does on connection errors; and when
        the events table's lock is not granted within ``lock_timeout`` (a writer is stuck
        holding it), the holder is terminated if it has been waiting on its client for
        :data:`STUCK_WRITER_SECONDS`, and the insert retried."""
        for attempt in range(1, INSERT_ATTEMPTS + 1):
            try:
                return _library_insert_events(self, stored_events, **kwargs)
            except (InterfaceError, OperationalError) as exc:
                if attempt == INSERT_ATTEMPTS:
                    raise
                if isinstance(exc.__cause__, LockNotAvailable):
                    self.reap_stuck_writers()
                else:
                    time.sleep(0.2)
        raise AssertionError("unreachable")

    def reap_stuck_writers(self) -> int:
        """Terminate the sessions holding the events table's lock while waiting for their
        client for :data:`STUCK_WRITER_SECONDS` or more: a process stopped (SIGSTOP, a hung
        VM) mid-commit. PostgreSQL's ``idle_in_transaction_session_timeout`` does not end
        them: a pipelined transaction stopped before its Sync shows as ``active``, waiting on
        ``ClientRead``, not idle. Its transaction rolls back; on resuming, its commit fails
        and is retried (and then refused as a conflict or recorded, once)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.reap_stuck_writers_statement, (STUCK_WRITER_SECONDS,))
            reaped = curs.fetchall()
        for row in reaped:
            log.warning(
                "terminated PostgreSQL session %s (%s): it held the events table's lock, waiting for its client, "
                "for over %.0f s (a writer stopped mid-commit)", row["pid"], row["application_name"] or "?",
                STUCK_WRITER_SECONDS,
            )
        return len(reaped)

    def turn_id_version(self, originator_id: UUID, turn_id: str) -> int | None:
        """The version of the event that recorded this turn id in this aggregate, if any."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_turn_id_statement, (originator_id, turn_id), prepare=True)
            row = curs.fetchone()
        return None if row is None else int(row["version"])


class Factory(PostgresFactory):
    """The library's PostgreSQL factory: :class:`TurnIdRecorder` as the application recorder,
    and every recorder's tables created under :data:`SCHEMA_LOCK`."""

    application_recorder_class = TurnIdRecorder

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        # The database functions insert events without the recorder's _insert_events hook,
        # which would leave turn ids unrecorded: botyard never uses them.
        self.datastore.enable_db_functions = False
        if not (self.env.get(self.POSTGRES_LOCK_TIMEOUT) or "").strip():
            self.datastore.lock_timeout = LOCK_TIMEOUT  # read by the recorders made next

    @contextmanager
    def schema_lock(self) -> Iterator[None]:
        """Hold :data:`SCHEMA_LOCK` (session-level, on a connection of the pool) meanwhile."""
        if not self.env_create_table():
            yield
            return
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
            try:
                yield
            finally:
                with contextlib.suppress(Exception):  # a broken connection released it already
                    conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))

    def application_recorder(self) -> ApplicationRecorder:
        with self.schema_lock():
            return super().application_recorder()

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        with self.schema_lock():
            return super().aggregate_recorder(purpose)
