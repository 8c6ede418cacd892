"""Exactly once per ``turn_id``, however old the turn: the ``botyard_turn_ids`` table.

A conversation keeps its last :data:`~botyard.events.conversation.RECENT_TURNS` turns in
memory to answer a retried ``turn_id`` at once. A retry of an older turn (a node that was
paused or partitioned, resuming with a backlog) is caught by this table instead: one row
``(originator_id, turn_id) -> version`` per recorded turn that has a turn id, inserted in
the same transaction as the turn's event (the recorders' ``_insert_events`` hook, which the
library's own tracking records use). Its primary key makes a second commit of the same
turn id in a conversation fail as a whole, with the same ``IntegrityError`` as a version
conflict; the conversation actor's retry path then finds the recorded turn here
(:meth:`botyard.events.store.EventStore.recorded_turn`) and answers with its reply.

Turns recorded before the table existed have no rows: they keep the 16-turn window's
guarantee only (``docs/events.md``).
"""

from __future__ import annotations

from typing import Any, Sequence
from uuid import UUID

from eventsourcing.persistence import EventStore as LibraryEventStore
from eventsourcing.persistence import Recording

from botyard.events.conversation import Conversation

TURN_IDS_TABLE = "botyard_turn_ids"

TurnIdRow = tuple[UUID, str, int]
"""(conversation aggregate id, turn id, version of the turn's event)."""


def turn_id_rows(domain_events: Sequence[Any]) -> list[TurnIdRow]:
    """The ``botyard_turn_ids`` rows of the turns among these events (those with a turn id)."""
    turn = Conversation.TurnRecorded
    return [
        (e.originator_id, e.turn_id, e.originator_version)
        for e in domain_events
        if isinstance(e, turn) and e.turn_id is not None
    ]


class TurnIdEventStore(LibraryEventStore):
    """The library's event store, passing each turn's id down to the recorder
    (``turn_ids=`` of ``insert_events``), so ``save`` and ``save_all`` both record it."""

    def put(self, domain_events: Sequence[Any], **kwargs: Any) -> list[Recording]:
        rows = turn_id_rows(domain_events)
        if rows:
            kwargs["turn_ids"] = rows
        return super().put(domain_events, **kwargs)
