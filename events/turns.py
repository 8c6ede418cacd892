"""The read side of recorded turns: a bot's turns across its conversations, fast.

Turn events do not repeat their tenant and bot (a conversation's ``Started`` event holds
them), so a bot's conversations are found first, from the ``Started`` notifications
alone, then its turns are read from the ``TurnRecorded`` notifications, decoded straight
from msgpack: no aggregate is rebuilt and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator
from uuid import UUID

from eventsourcing.utils import get_topic

from botyard.events.conversation import Conversation
from botyard.events.labels import turn_ref

STARTED_TOPIC = get_topic(Conversation.Started)
TURN_TOPIC = get_topic(Conversation.TurnRecorded)
PAGE = 5000


@dataclass(frozen=True, slots=True)
class TurnRow:
    """One recorded turn, as replay, export and the gate see it."""

    tenant: str
    bot: str
    conversation_id: str
    turn: int
    user_text: str
    intent: str
    confidence: float
    reply: str
    fallback: bool
    snapshot: str
    node: str
    received_at: float
    entities: list = field(default_factory=list)
    turn_id: str | None = None
    recorded_at: float = 0.0
    """When the turn was recorded (the event's timestamp): ``recorded_at - received_at`` is
    the time from the request reaching the node to its answer being ready to commit."""
    position: int = 0
    """The event's notification id: the global order of turns (0 when read per conversation)."""

    @property
    def latency_ms(self) -> float:
        return max(0.0, (self.recorded_at - self.received_at) * 1000.0)

    @property
    def ref(self) -> str:
        return turn_ref(self.tenant, self.bot, self.conversation_id, self.turn)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref, "tenant": self.tenant, "bot": self.bot, "conversation_id": self.conversation_id,
            "turn": self.turn, "turn_id": self.turn_id, "user_text": self.user_text, "intent": self.intent,
            "confidence": self.confidence, "fallback": self.fallback, "entities": self.entities, "reply": self.reply,
            "snapshot": self.snapshot, "node": self.node, "received_at": self.received_at,
            "latency_ms": round(self.latency_ms, 3),
        }

    @classmethod
    def from_state(cls, tenant: str, bot: str, conversation_id: str, state: dict, position: int = 0) -> "TurnRow":
        return cls(
            tenant, bot, conversation_id, state["turn"], state["user_text"], state["intent"], state["confidence"],
            state["reply"], state["fallback"], state["snapshot"], state["node"], state["received_at"],
            state.get("entities") or [], state.get("turn_id"), _seconds(state.get("timestamp")), position,
        )


def _seconds(when: Any) -> float:
    return when.timestamp() if isinstance(when, datetime) else 0.0


def conversations_of(store, tenant: str, bot: str) -> dict[UUID, str]:
    """Aggregate id -> conversation id of every conversation of one bot."""
    decode = store.mapper.transcoder.decode
    found: dict[UUID, str] = {}
    for n in _forward(store, [STARTED_TOPIC], 0, None):
        state = decode(n.state)
        if state["tenant"] == tenant and state["bot"] == bot:
            found[n.originator_id] = state["conversation_id"]
    return found


def bot_turns(
    store,
    tenant: str,
    bot: str,
    *,
    since: float | None = None,
    until: float | None = None,
    last: int | None = None,
) -> list[TurnRow]:
    """A bot's turns in recording order: those received in ``[since, until)``, and of
    those only the ``last`` N (read backwards, so a short look at a long log is cheap)."""
    owners = conversations_of(store, tenant, bot)
    if not owners:
        return []
    decode = store.mapper.transcoder.decode
    rows: list[TurnRow] = []
    top = store.recorder.max_notification_id() or 0
    pages = _backward(store, top) if last is not None else _forward(store, [TURN_TOPIC], 0, top)
    for n in pages:
        conversation_id = owners.get(n.originator_id)
        if conversation_id is None:
            continue
        state = decode(n.state)
        at = state["received_at"]
        if (since is not None and at < since) or (until is not None and at >= until):
            continue
        rows.append(TurnRow.from_state(tenant, bot, conversation_id, state, n.id))
        if last is not None and len(rows) >= last:
            break
    if last is not None:
        rows.reverse()
    return rows


def conversation_turns(store, tenant: str, bot: str, conversation_id: str) -> list[TurnRow]:
    """Every turn of one conversation (raises ``UnknownConversation`` for none)."""
    return [
        TurnRow.from_state(tenant, bot, conversation_id, vars(e), 0) for e in store.turns(tenant, bot, conversation_id)
    ]


def _forward(store, topics: list[str], after: int, stop: int | None) -> Iterator:
    position = after
    while True:
        page = store.recorder.select_notifications(position + 1, PAGE, stop=stop, topics=topics)
        yield from page
        if len(page) < PAGE:
            return
        position = page[-1].id


def _backward(store, top: int) -> Iterator:
    """Turn notifications from the newest back, a window of ids at a time."""
    hi = top
    while hi > 0:
        lo = max(1, hi - PAGE * 4 + 1)
        window = list(_forward(store, [TURN_TOPIC], lo - 1, hi))
        yield from reversed(window)
        hi = lo - 1
