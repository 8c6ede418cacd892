"""The Labels aggregate: the intents a tenant says some recorded turns should have had.

One aggregate per bot. ``TurnLabelled`` copies the turn's user text and what was served,
so training and the replay gate read labels without opening the conversations. A turn
labelled again takes the newer label. Applying an event only changes fields.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event


def labels_uuid(tenant: str, bot: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"botyard:labels:{tenant}/{bot}")


def turn_ref(tenant: str, bot: str, conversation_id: str, turn: int) -> str:
    """``TENANT/BOT/CONVERSATION_ID#TURN``: how one recorded turn is named everywhere."""
    return f"{tenant}/{bot}/{conversation_id}#{turn}"


class Labels(Aggregate):
    TOPIC = "botyard:Labels"

    class Created(Aggregate.Created):
        """Never recorded (``Started`` is the first event); named because with explicit topics the
        library wants a topic on every event class of the aggregate, this inherited one too."""

        TOPIC = "botyard:Labels.Created"

    class Started(Aggregate.Created):
        """The bot's first label (stable name: ``Labels.Started`` v1)."""

        TOPIC = "botyard:Labels.Started"
        class_version = 1
        tenant: str
        bot: str

    class TurnLabelled(Aggregate.Event):
        """Turn ``turn`` of ``conversation_id`` should have been ``intent`` (stable name:
        ``Labels.TurnLabelled`` v1). ``served_intent`` and ``snapshot`` are what it got."""

        TOPIC = "botyard:Labels.TurnLabelled"
        class_version = 1
        conversation_id: str
        turn: int
        user_text: str
        intent: str
        served_intent: str
        snapshot: str
        actor: str

    @staticmethod
    def create_id(tenant: str, bot: str) -> UUID:
        return labels_uuid(tenant, bot)

    @event(Started)
    def __init__(self, tenant: str, bot: str) -> None:
        self.tenant = tenant
        self.bot = bot
        self.labels: dict[str, dict[str, Any]] = {}
        """``CONVERSATION_ID#TURN`` -> the latest label of that turn."""

    @event(TurnLabelled)
    def label(
        self, conversation_id: str, turn: int, user_text: str, intent: str, served_intent: str, snapshot: str, actor: str
    ) -> None:
        self.labels[f"{conversation_id}#{turn}"] = {
            "conversation_id": conversation_id, "turn": turn, "user_text": user_text, "intent": intent,
            "served_intent": served_intent, "snapshot": snapshot, "actor": actor,
        }

    def of(self, conversation_id: str, turn: int) -> str | None:
        found = self.labels.get(f"{conversation_id}#{turn}")
        return found["intent"] if found else None
