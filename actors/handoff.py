"""Human handoff on the conversation actor's side: user turns that wait for an agent, and
the notices a handed-off conversation publishes for agents.

While a conversation is handed off the bot says nothing: each user turn is recorded, then
published on ``botyard.handoff.<tenant>.<bot>`` (a :func:`notice`), and its reply is held
for up to the handoff wait. An agent's message (``botyard.agent.<tenant>.<bot>``) is
recorded as ``Conversation.AgentReplied`` and answers the held turn; a turn that waited in
vain is answered with no text, and the agent's later answer comes with the user's next turn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

from botyard import protocol
from botyard.actors.outbox import Outgoing, ok_reply


@dataclass(frozen=True, slots=True)
class Held:
    """A user's turn (committed) whose reply waits for an agent."""

    reply_to: str
    as_json: bool
    body: Mapping[str, Any]
    received_at: float
    deadline: float
    """``time.monotonic()`` after which it is answered with no text."""

    def answer(self, text: str = "", *, agent: str | None = None, dialogue: Mapping[str, Any] | None = None) -> Outgoing:
        body = {**self.body, "text": text, **(dialogue or {})}
        if agent is not None:
            body["agent"] = agent
        return ok_reply(self.reply_to, self.as_json, body, received_at=self.received_at)

    def expired(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) >= self.deadline


def notice(event: str, tenant: str, bot: str, conversation_id: str, *, turn: int, text: str, node: str,
           dialogue: Mapping[str, Any], intent: str = "", reason: str = "", agent: str = "") -> Outgoing:
    """A message for agents on the bot's handoff subject, always JSON (docs/protocol.md,
    "Handoff"): ``event`` is ``handed_off`` (the bot handed the conversation over; ``text``
    is the user's turn that did it), ``message`` (the user wrote while handed off) or
    ``handed_back`` (an agent gave it back)."""
    body = {
        "event": event, "tenant": tenant, "bot": bot, "conversation_id": conversation_id, "turn": turn, "text": text,
        "intent": intent, "reason": reason, "agent": agent, "slots": dict(dialogue["slots"]), "node": node,
        "at": time.time(),
    }
    return Outgoing(protocol.handoff_subject(tenant, bot), protocol.encode_body(body, True), True, reply=False)
