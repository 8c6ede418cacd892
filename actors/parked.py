"""A user's turn waiting for its action: decided up to the call, recorded when the result comes.

While a turn is parked, the conversation's later requests queue behind it (in order), so a
retried ``turn_id`` finds the first turn recorded and is answered from it: the action is
called once per turn, however often the client retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from botyard import action_protocol as wire
from botyard.actors.actions import ActionRequest
from botyard.actors.messages import ClassifiedTurn
from botyard.dialogue.actions import Action
from botyard.dialogue.state import DialogueState
from botyard.dialogue.turn import Outcome, Understanding
from botyard.events.conversation import Conversation


@dataclass(slots=True)
class Parked:
    turn: ClassifiedTurn
    conversation: Conversation
    before: DialogueState
    """The dialogue state before the turn (the record keeps what the turn changed)."""
    understood: Understanding
    number: int
    outcome: Outcome
    """The turn so far; its ``call`` is the action being called."""
    queue: list[ClassifiedTurn] = field(default_factory=list)


def request_of(parked: Parked, action: Action) -> ActionRequest:
    """The call of ``parked.outcome.call``, with the same idempotency key on every try (and on
    any node that takes the turn over: it is made of the conversation, turn and call index)."""
    call = parked.outcome.call
    assert call is not None
    req, turn = parked.turn.work.request, parked.turn
    key = wire.idempotency_key(req.conversation_id, parked.number, call.index, req.turn_id)
    fields = {
        "tenant": req.tenant, "bot": req.bot, "conversation_id": req.conversation_id, "turn": parked.number,
        "turn_id": req.turn_id, "intent": turn.intent, "confidence": turn.confidence, "entities": list(turn.entities),
        "slots": dict(call.slots), "text": req.text, "form": call.form,
    }
    return ActionRequest(req.tenant, req.bot, action, key, fields)
