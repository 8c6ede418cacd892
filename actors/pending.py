"""What a conversation actor holds between taking a request and committing it, and the two
requests to a conversation that are not user turns: an agent's answer and a proactive message.

Each is applied to the conversation at once (its event pending), and answered only after the
group commit (:meth:`ConversationActor._answer`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botyard import protocol
from botyard.actors.handoff import notice
from botyard.actors.messages import ClassifiedTurn
from botyard.actors.outbox import Outgoing, error_reply
from botyard.dialogue import engine
from botyard.dialogue.spec import spec_of
from botyard.dialogue.state import to_dict as event_dict
from botyard.events.conversation import Conversation


@dataclass(slots=True)
class Pending:
    turn: ClassifiedTurn
    conversation: Conversation
    body: dict[str, Any]
    hold: bool = False
    """A user's turn in a handed-off conversation: its reply waits for an agent."""
    notices: tuple[Outgoing, ...] = ()
    """Publications once committed: handoff notices, a proactive message's delivery."""
    delivers: tuple[str, str] | None = None
    """An agent's message answering the held turn: (text for the user, agent)."""


def agent_answer(turn: ClassifiedTurn, conversation: Conversation, *, node_id: str, waiting: bool) -> Pending | Outgoing:
    """An agent's message to a handed-off conversation (``waiting``: a user's turn waits for
    it): recorded, it answers that turn, and hands back when asked to; for a conversation
    that is not handed off, the one error reply."""
    req, message = turn.work.request, turn.work.request.agent
    assert message is not None
    state = conversation.dialogue_state
    if not state.handed_off:
        return error_reply(
            turn.work.reply_to, req.as_json, protocol.NOT_HANDED_OFF,
            f"conversation {req.conversation_id!r} of {req.tenant}/{req.bot} is not handed off to a person",
            conversation_id=req.conversation_id, received_at=turn.work.received_at,
        )
    events, back = (), ""
    if message.hand_back:
        outcome = engine.hand_back(spec_of(turn.definition), state)
        events, back = outcome.events, outcome.reply_text
    for_user = " ".join(t for t in (message.text, back) if t)
    delivered = waiting and bool(for_user)
    conversation.agent_replied(
        text=message.text, agent=message.agent, dialogue=[event_dict(e) for e in events], delivered=delivered,
        node=node_id, at=time.time(),
    )
    view = conversation.dialogue_view()
    body = {"conversation_id": req.conversation_id, "turn": conversation.turns, "delivered": delivered,
            "handed_off": view["handed_off"], "slots": view["slots"]}
    notices = () if view["handed_off"] else (notice(
        "handed_back", req.tenant, req.bot, req.conversation_id, turn=conversation.turns, text=message.text,
        node=node_id, dialogue=view, agent=message.agent,
    ),)
    return Pending(turn, conversation, body, notices=notices, delivers=(for_user, message.agent) if delivered else None)


def proactive_message(turn: ClassifiedTurn, conversation: Conversation, *, node_id: str) -> Pending:
    """A proactive message: recorded (once per ``message_id``), then published on the
    conversation's out subject (again for a resent one: delivery is at least once)."""
    req, message = turn.work.request, turn.work.request.message
    assert message is not None
    found = conversation.recent_message_ids.get(message.message_id)
    if found is None:
        seq, text, at = conversation.message_count + 1, message.text, time.time()
        conversation.message_sent(message_id=message.message_id, text=text, source=message.source, seq=seq,
                                  node=node_id, at=at)
    else:
        seq, text, at = found
    subject = protocol.out_subject(req.tenant, req.bot, req.conversation_id)
    delivery = {"kind": "message", "tenant": req.tenant, "bot": req.bot, "conversation_id": req.conversation_id,
                "message_id": message.message_id, "seq": seq, "text": text, "source": message.source, "at": at}
    body = {"conversation_id": req.conversation_id, "message_id": message.message_id, "seq": seq,
            "recorded": found is None, "subject": subject}
    return Pending(turn, conversation, body, notices=(Outgoing(subject, protocol.encode_body(delivery, True), True, reply=False),))
