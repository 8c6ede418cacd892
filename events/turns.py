"""The read side of recorded turns: a bot's turns across its conversations, fast.

Turn events do not repeat their tenant and bot (a conversation's ``Started`` event holds
them), so a bot's conversations are found first, from the ``Started`` notifications
alone, then its turns are read from the ``TurnRecorded`` notifications. Each one is read
through the store's mapper, so the event classes' upcasters run (a v1 turn gets its
``entities``); no aggregate is rebuilt and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, Iterator, Sequence
from uuid import UUID

from botyard.dialogue.state import DialogueState, apply, from_dict
from botyard.events.conversation import Conversation
from botyard.events.labels import turn_ref
from botyard.events.topics import topics_of
from botyard.turn_record import TURN_FIELDS, TurnRecord

STARTED_TOPICS = topics_of(Conversation.Started)
TURN_TOPICS = topics_of(Conversation.TurnRecorded)
PAGE = 5000


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnRow(TurnRecord):
    """One recorded turn, as replay, export and the gate see it: the record, and where and
    when it was recorded."""

    tenant: str
    bot: str
    conversation_id: str
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
            "latency_ms": round(self.latency_ms, 3), "dialogue": self.dialogue,
        }

    @classmethod
    def from_event(
        cls, tenant: str, bot: str, conversation_id: str, e: Conversation.TurnRecorded, position: int = 0
    ) -> "TurnRow":
        return cls(
            *_record_of(vars(e)), tenant=tenant, bot=bot, conversation_id=conversation_id,
            recorded_at=_seconds(e.timestamp), position=position,
        )


_record_of = itemgetter(*TURN_FIELDS)
"""The record's fields, in order, from an event's fields by name."""


def _seconds(when: Any) -> float:
    return when.timestamp() if isinstance(when, datetime) else 0.0


def conversations_of(store, tenant: str, bot: str) -> dict[UUID, str]:
    """Aggregate id -> conversation id of every conversation of one bot."""
    read = store.mapper.to_domain_event
    found: dict[UUID, str] = {}
    for n in notifications(store, STARTED_TOPICS, 0, None):
        e = read(n)
        if e.tenant == tenant and e.bot == bot:
            found[n.originator_id] = e.conversation_id
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
    read = store.mapper.to_domain_event
    rows: list[TurnRow] = []
    top = store.recorder.max_notification_id() or 0
    pages = _backward(store, top) if last is not None else notifications(store, TURN_TOPICS, 0, top)
    for n in pages:
        conversation_id = owners.get(n.originator_id)
        if conversation_id is None:
            continue
        e = read(n)
        at = e.received_at
        if (since is not None and at < since) or (until is not None and at >= until):
            continue
        rows.append(TurnRow.from_event(tenant, bot, conversation_id, e, n.id))
        if last is not None and len(rows) >= last:
            break
    if last is not None:
        rows.reverse()
    return rows


def dialogue_timeline(events: Sequence) -> dict[int, dict[str, Any]]:
    """Per turn number: the dialogue state right after the turn (``slots``, ``form``,
    ``asked``, ``handed_off``) and the ``agent`` answers recorded after it, folded from one
    conversation's events (``store.conversation_events``) alone."""
    state, out, turn = DialogueState(), {}, 0
    for e in events:
        if isinstance(e, Conversation.TurnRecorded):
            turn = e.turn
        elif not isinstance(e, Conversation.AgentReplied):
            continue
        for d in e.dialogue:
            state = apply(state, from_dict(d))
        entry = out.setdefault(turn, {"agent": []})
        entry.update(slots={k: list(v) if isinstance(v, tuple) else v for k, v in state.slots.items()}, form=state.form,
                     asked=state.asked, handed_off=state.handed_off)
        if isinstance(e, Conversation.AgentReplied):
            entry["agent"].append({"text": e.text, "agent": e.agent, "delivered": e.delivered, "at": e.at})
    return out


def conversation_messages(store, tenant: str, bot: str, conversation_id: str, after: int = 0) -> list[dict[str, Any]]:
    """The conversation's proactive messages with ``seq`` over ``after``, oldest first (what a
    client that was not listening on its out subject missed)."""
    return [
        {"message_id": e.message_id, "seq": e.seq, "text": e.text, "source": e.source, "at": e.at, "node": e.node}
        for e in store.conversation_events(tenant, bot, conversation_id)
        if isinstance(e, Conversation.MessageSent) and e.seq > after
    ]


def conversation_turns(store, tenant: str, bot: str, conversation_id: str, events: Sequence | None = None) -> list[TurnRow]:
    """Every turn of one conversation (raises ``UnknownConversation`` for none); ``events``:
    its events, when the caller has read them already."""
    if events is None:
        events = store.conversation_events(tenant, bot, conversation_id)
    return [
        TurnRow.from_event(tenant, bot, conversation_id, e) for e in events if isinstance(e, Conversation.TurnRecorded)
    ]


def notifications(store, topics: Sequence[str], after: int, stop: int | None) -> Iterator:
    """Notifications of these topics after ``after`` up to ``stop``, read a page at a time."""
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
        window = list(notifications(store, TURN_TOPICS, lo - 1, hi))
        yield from reversed(window)
        hi = lo - 1
