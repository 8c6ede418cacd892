"""The Conversation aggregate: every turn of a conversation is one ``TurnRecorded`` event.

A ``TurnRecorded`` event stores a :class:`~botyard.protocol.TurnRecord`, field by field.
Applying an event only changes fields of the aggregate: replay does no I/O.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from botyard.protocol import TURN_FIELDS, TurnRecord

RECENT_TURNS = 16
"""How many recent turns a live conversation keeps in memory (for retried turn ids)."""


def conversation_uuid(tenant: str, bot: str, conversation_id: str) -> UUID:
    """The aggregate id: conversations are scoped by tenant and bot."""
    return uuid5(NAMESPACE_URL, f"botyard:conversation:{tenant}/{bot}/{conversation_id}")


class Conversation(Aggregate):
    TOPIC = "botyard:Conversation"

    class Created(Aggregate.Created):
        """Never recorded (``Started`` is the first event); named because with explicit topics the
        library wants a topic on every event class of the aggregate, this inherited one too."""

        TOPIC = "botyard:Conversation.Created"

    class Started(Aggregate.Created):
        """The conversation's first event (stable name: ``Conversation.Started`` v1)."""

        TOPIC = "botyard:Conversation.Started"
        class_version = 1
        tenant: str
        bot: str
        conversation_id: str

    class TurnRecorded(Aggregate.Event):
        """One user turn and the bot's answer (stable name: ``Conversation.TurnRecorded`` v2):
        the fields of a :class:`~botyard.protocol.TurnRecord`, in its order (:attr:`record`).

        v2 added ``entities`` (a list of ``{entity, value, start, end, extractor,
        confidence}``); v1 events are upcast with no entities.
        """

        TOPIC = "botyard:Conversation.TurnRecorded"
        class_version = 2
        turn: int
        turn_id: str | None
        user_text: str
        intent: str
        confidence: float
        reply: str
        fallback: bool
        snapshot: str
        node: str
        received_at: float
        entities: list

        @staticmethod
        def upcast_v1_v2(state: dict) -> None:
            state["entities"] = []

        @property
        def record(self) -> TurnRecord:
            return TurnRecord(*(getattr(self, name) for name in TURN_FIELDS))

    @staticmethod
    def create_id(tenant: str, bot: str, conversation_id: str) -> UUID:
        return conversation_uuid(tenant, bot, conversation_id)

    @event(Started)
    def __init__(self, tenant: str, bot: str, conversation_id: str) -> None:
        self.tenant = tenant
        self.bot = bot
        self.conversation_id = conversation_id
        self.turns = 0
        self.last_intent: str | None = None
        self.recent: list[dict[str, Any]] = []

    @event(TurnRecorded)
    def record_turn(
        self,
        turn: int,
        turn_id: str | None,
        user_text: str,
        intent: str,
        confidence: float,
        reply: str,
        fallback: bool,
        snapshot: str,
        node: str,
        received_at: float,
        entities: list,
    ) -> None:
        record = TurnRecord(
            turn, turn_id, user_text, intent, confidence, reply, fallback, snapshot, node, received_at, entities
        )
        self.turns = turn
        self.last_intent = intent
        self.recent = [*self.recent[-(RECENT_TURNS - 1) :], record.reply_fields()]

    def find_turn(self, turn_id: str | None) -> dict[str, Any] | None:
        """A recent turn with this client turn id (a retry of a committed turn): its
        record's ``REPLY_FIELDS`` (:func:`botyard.protocol.reply_body` makes the reply)."""
        if turn_id is None:
            return None
        for item in reversed(self.recent):
            if item["turn_id"] == turn_id:
                return item
        return None

    def state(self) -> dict[str, Any]:
        """The derived state, for comparisons and inspection."""
        return {
            "id": str(self.id),
            "version": self.version,
            "tenant": self.tenant,
            "bot": self.bot,
            "conversation_id": self.conversation_id,
            "turns": self.turns,
            "last_intent": self.last_intent,
            "recent": list(self.recent),
        }
