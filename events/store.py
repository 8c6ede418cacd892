"""The event store: an ``eventsourcing`` Application over SQLite or PostgreSQL.

``events_url`` selects the backend: empty or ``sqlite:///path/events.db`` for SQLite,
``postgresql://user:pass@host:port/dbname`` for PostgreSQL. Stored events are msgpack,
under stable topics (:mod:`botyard.events.topics`). Each turn's ``turn_id`` is also
recorded in its commit's transaction (``botyard_turn_ids``, :mod:`botyard.events.idempotency`),
so no turn id is recorded twice in a conversation, however old its first turn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, unquote, urlparse
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import EventStore as LibraryEventStore
from eventsourcing.persistence import IntegrityError, Transcoder

from botyard.events.bot import Bot, bot_uuid
from botyard.events.codec import MsgpackTranscoder
from botyard.events.conversation import Conversation, conversation_uuid
from botyard.events.errors import EventStoreError, UnknownConversation
from botyard.events.idempotency import TurnIdEventStore
from botyard.events.labels import Labels, labels_uuid
from botyard.events.sqlite import SYNCHRONOUS
from botyard.events.tenant import Tenant, tenant_uuid
from botyard.events.topics import topics_of

__all__ = ["EventStore", "IntegrityError", "store_env"]


def store_env(events_url: str | None, data_dir: str | Path) -> dict[str, str]:
    """The ``eventsourcing`` environment for an events URL."""
    if not events_url or events_url.startswith("sqlite:"):
        path = Path(data_dir) / "events.db"
        synchronous = "full"
        if events_url:
            if not events_url.startswith("sqlite:///"):
                raise EventStoreError(
                    f"SQLite URLs look like sqlite:///relative.db or sqlite:////abs/path.db, not {events_url!r}"
                )
            location, _, query = events_url[len("sqlite:///") :].partition("?")
            options = parse_qs(query, keep_blank_values=True)
            synchronous = (options.pop("synchronous", ["full"])[-1] or "full").lower()
            if options or synchronous not in SYNCHRONOUS:
                raise EventStoreError(
                    f"SQLite URLs take one option, synchronous={'|'.join(SYNCHRONOUS)}; not {query!r}"
                )
            path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "botyard.events.sqlite:Factory", "SQLITE_DBNAME": str(path), "SQLITE_LOCK_TIMEOUT": "10",
            "SQLITE_SYNCHRONOUS": synchronous,
        }
    url = urlparse(events_url)
    if url.scheme not in ("postgresql", "postgres"):
        raise EventStoreError(f"unsupported events URL scheme {url.scheme!r}; use sqlite:// or postgresql://")
    env = {
        "PERSISTENCE_MODULE": "botyard.events.postgres:Factory",
        "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "4",
    }
    return env


class EventStore(Application):
    """Conversations, bots and labels as event-sourced aggregates.

    Aggregate snapshots are on (a ``snapshots`` table beside the events), but none is
    taken on save: the node's snapshotter actor takes conversations' snapshots off the
    turn path (:meth:`snapshot_conversation`), and every load starts from the newest one.
    """

    name = "botyard"
    is_snapshotting_enabled = True

    def __init__(self, events_url: str | None = None, data_dir: str | Path = ".botyard") -> None:
        self.events_url = events_url or ""
        try:
            super().__init__(env=store_env(events_url, data_dir))
        except EventStoreError:
            raise
        except Exception as exc:
            raise EventStoreError(f"cannot open event store {events_url or 'sqlite'}: {exc}") from exc

    def construct_transcoder(self) -> Transcoder:
        return MsgpackTranscoder()

    def construct_event_store(self) -> LibraryEventStore:
        return TurnIdEventStore(mapper=self.mapper, recorder=self.recorder)

    # -- conversations ----------------------------------------------------------------

    def load_conversation(self, tenant: str, bot: str, conversation_id: str) -> Conversation | None:
        try:
            return self.repository.get(conversation_uuid(tenant, bot, conversation_id))
        except AggregateNotFoundError:
            return None

    def conversation_at(self, tenant: str, bot: str, conversation_id: str, turn: int) -> Conversation:
        """The conversation as it was right after turn ``turn`` (time travel)."""
        try:
            return self.repository.get(conversation_uuid(tenant, bot, conversation_id), version=turn + 1)
        except AggregateNotFoundError:
            raise UnknownConversation(f"{tenant}/{bot}/{conversation_id}") from None

    def snapshot_conversation(self, aggregate_id: UUID, version: int) -> None:
        """Record the conversation's state at ``version`` so loads replay only what follows."""
        self.take_snapshot(aggregate_id, version=version)

    def conversation_events(self, tenant: str, bot: str, conversation_id: str) -> list:
        events = list(self.events.get(conversation_uuid(tenant, bot, conversation_id)))
        if not events:
            raise UnknownConversation(f"{tenant}/{bot}/{conversation_id}")
        return events

    def recorded_turn(self, aggregate_id: UUID, turn_id: str) -> Conversation.TurnRecorded | None:
        """The turn recorded with this turn id in this conversation, however old (one indexed
        read of ``botyard_turn_ids``, then that one event); None if there is none (or it was
        recorded before the table existed)."""
        lookup = getattr(self.recorder, "turn_id_version", None)  # None: a plain library recorder (benches)
        version = lookup(aggregate_id, turn_id) if lookup is not None else None
        if version is None:
            return None
        for e in self.events.get(aggregate_id, gt=version - 1, lte=version):
            if isinstance(e, Conversation.TurnRecorded) and e.turn_id == turn_id:
                return e
        return None

    def turns(self, tenant: str, bot: str, conversation_id: str) -> list[Conversation.TurnRecorded]:
        return [
            e for e in self.conversation_events(tenant, bot, conversation_id) if isinstance(e, Conversation.TurnRecorded)
        ]

    def take_write_times(self) -> list[tuple[float, float]]:
        """The slow write transactions since the last call, as (lock wait, total) seconds (SQLite only)."""
        take = getattr(self.factory.datastore, "take_write_times", None)
        return take() if take is not None else []

    def save_all(self, conversations: Iterable[Conversation]) -> list:
        """Commit the pending events of many conversations in one transaction.

        This goes straight to the library's event store (mapper + recorder): the
        Application's ``save`` adds generic protocol checks and notification hooks
        that cost a measurable share of the turn path and that botyard does not use.
        On failure nothing is committed and the aggregates must be discarded: a version
        conflict and a turn id recorded before (``botyard_turn_ids``) both raise
        ``IntegrityError``. Returns the events committed.
        """
        events = [e for conversation in conversations for e in conversation.collect_events()]
        if events:
            self.events.put(events)
        return events

    # -- bots and their aliases ---------------------------------------------------------

    def bot(self, tenant: str, bot: str) -> Bot | None:
        try:
            return self.repository.get(bot_uuid(tenant, bot))
        except AggregateNotFoundError:
            return None

    def change_bot(self, tenant: str, bot: str, change: Callable[[Bot], None]) -> Bot:
        """Apply ``change`` (a Bot command) to the bot's latest state and save it."""
        return self._change(lambda: self.bot(tenant, bot) or Bot(tenant, bot), change, f"{tenant}/{bot}")

    def _change(self, current: Callable[[], Any], change: Callable[[Any], None], what: str) -> Any:
        """Apply ``change`` to an aggregate's latest state and save it. A concurrent writer
        makes the save fail on the version check; the change is re-applied to the new state, once."""
        for attempt in (1, 2):
            aggregate = current()
            change(aggregate)
            try:
                self.save(aggregate)
                return aggregate
            except IntegrityError:
                if attempt == 2:
                    raise EventStoreError(f"{what} changed concurrently twice; try again") from None
        raise AssertionError("unreachable")

    # -- tenants ------------------------------------------------------------------------------

    def tenant(self, tenant: str) -> Tenant | None:
        try:
            return self.repository.get(tenant_uuid(tenant))
        except AggregateNotFoundError:
            return None

    def change_tenant(self, tenant: str, change: Callable[[Tenant], None]) -> Tenant:
        return self._change(lambda: self.tenant(tenant) or Tenant(tenant), change, f"tenant {tenant}")

    # -- labels -------------------------------------------------------------------------------

    def labels(self, tenant: str, bot: str) -> Labels | None:
        try:
            return self.repository.get(labels_uuid(tenant, bot))
        except AggregateNotFoundError:
            return None

    def label_turn(self, tenant: str, bot: str, change: Callable[[Labels], None]) -> Labels:
        return self._change(lambda: self.labels(tenant, bot) or Labels(tenant, bot), change, f"labels of {tenant}/{bot}")

    def bot_events(self, tenant: str, bot: str) -> list:
        return list(self.events.get(bot_uuid(tenant, bot)))

    def alias_moves(self, after: int = 0, limit: int = 1000) -> tuple[list[Bot.AliasMoved], int]:
        """Alias moves of every bot recorded after notification ``after``, and the position read up to.

        The position is the last notification *looked at*, not the last move found, so the
        next call scans only what was recorded since (turns outnumber moves by far).
        """
        stop = self.recorder.max_notification_id() or 0
        if stop <= after:
            return [], after
        notifications = self.recorder.select_notifications(after + 1, limit, stop=stop, topics=ALIAS_MOVED_TOPICS)
        moves = [self.mapper.to_domain_event(n) for n in notifications]
        return moves, (notifications[-1].id if len(notifications) == limit else stop)

    def bot_refs(self) -> list[tuple[str, str]]:
        """(tenant, bot) of every bot that has an aggregate (it has had an alias), read off
        the ``Registered`` events alone: no aggregate is replayed."""
        found: list[tuple[str, str]] = []
        position = 0
        while True:
            notifications = self.recorder.select_notifications(position + 1, 1000, topics=BOT_REGISTERED_TOPICS)
            if not notifications:
                return found
            for n in notifications:
                e = self.mapper.to_domain_event(n)
                found.append((e.tenant, e.bot))
            position = notifications[-1].id


ALIAS_MOVED_TOPICS = topics_of(Bot.AliasMoved)
BOT_REGISTERED_TOPICS = topics_of(Bot.Registered)
