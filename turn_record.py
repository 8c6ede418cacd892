"""A recorded turn, and its reply on the wire.

One record for every layer: a conversation's ``TurnRecorded`` event stores exactly its fields
(same names: the stored form), the read side's ``TurnRow`` is a record plus where and when it
was recorded, and a turn's reply on the wire is :func:`reply_body` of the record's
:data:`REPLY_FIELDS` (``client.Reply`` is that reply, typed; the rest of the wire protocol:
:mod:`botyard.protocol`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One user turn and the bot's answer, as recorded."""

    turn: int
    """1, 2, ... within its conversation."""
    turn_id: str | None
    """The client's id for the turn: a retry with the same id gets the recorded reply again."""
    user_text: str
    intent: str
    confidence: float
    reply: str
    """The bot's answer (``text`` in the reply)."""
    fallback: bool
    snapshot: str
    """The id of the model snapshot that classified the turn."""
    node: str
    """The node that recorded the turn."""
    received_at: float
    """When the request reached that node, in seconds since the Unix epoch."""
    entities: list
    """``{entity, value, start, end, extractor, confidence}`` per entity in the user's text."""
    dialogue: list = field(default_factory=list)
    """The dialogue events the turn committed, oldest first, each a dict with a ``name`` and a
    ``version`` (``{"name": "SlotSet", "version": 1, "slot": ..., "value": ..., "by": ...}``;
    docs/events.md lists them). Empty for a bot without a dialogue section."""

    def as_dict(self) -> dict[str, Any]:
        """The fields by name: what ``Conversation.record_turn`` takes."""
        return {name: getattr(self, name) for name in TURN_FIELDS}

    def reply_fields(self) -> dict[str, Any]:
        """The :data:`REPLY_FIELDS` by name."""
        return {name: getattr(self, name) for name in REPLY_FIELDS}


TURN_FIELDS = tuple(f.name for f in fields(TurnRecord))
REPLY_FIELDS = ("turn", "turn_id", "intent", "confidence", "reply", "fallback", "snapshot", "entities")
"""What a turn's reply repeats of its record. A conversation keeps these of its recent turns
(``Conversation.recent``, in this order, also in its aggregate snapshots) to answer a
retried turn id again."""


UNRECORDED_FIELDS = ("fallback_reason", "score")
"""Reply fields that the turn's event does not record (events are forever, and these describe the
model's reasoning, not the conversation): why the turn fell back and its in-scope score. A
retried turn's reply has its own classification's when that gives the recorded answer, else nil."""


NO_DIALOGUE = {"slots": {}, "form": None, "asked": None, "handed_off": False}
"""The dialogue fields of a reply for a conversation without dialogue state."""


def reply_body(conversation_id: str, turn: Mapping[str, Any], node: str,
               dialogue: Mapping[str, Any] = NO_DIALOGUE, unrecorded: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The reply to a turn, as the wire carries it (``docs/protocol.md``).

    ``turn`` holds a record's :data:`REPLY_FIELDS` (``TurnRecord.reply_fields()``, or one of
    a conversation's recent turns); ``node`` is the node answering, which for a retry may
    not be the one that recorded the turn; ``dialogue``: the conversation's ``slots``, active
    ``form``, the slot it ``asked`` for and whether it is ``handed_off``, after the turn (for
    a retry: now); ``unrecorded``: :data:`UNRECORDED_FIELDS` of the turn as just classified (nil
    when not given: the turn's event does not hold them).
    """
    extra = {name: (unrecorded or {}).get(name) for name in UNRECORDED_FIELDS}
    return {**_reply_fields(conversation_id, turn, node), **extra, "slots": dict(dialogue["slots"]),
            "form": dialogue["form"], "asked": dialogue["asked"], "handed_off": dialogue["handed_off"]}


def _reply_fields(conversation_id: str, turn: Mapping[str, Any], node: str) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "turn": turn["turn"],
        "turn_id": turn["turn_id"],
        "text": turn["reply"],
        "intent": turn["intent"],
        "confidence": turn["confidence"],
        "fallback": turn["fallback"],
        "entities": turn["entities"],
        "snapshot": turn["snapshot"],
        "node": node,
    }


__all__ = ["NO_DIALOGUE", "REPLY_FIELDS", "TURN_FIELDS", "UNRECORDED_FIELDS", "TurnRecord", "reply_body"]
