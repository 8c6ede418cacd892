"""The Conversation aggregate: every turn of a conversation is one ``TurnRecorded`` event.

A ``TurnRecorded`` event stores a :class:`~botyard.turn_record.TurnRecord`, field by field,
the dialogue events of the turn among them; an agent's answer to a handed-off conversation
is an ``AgentReplied`` event. The dialogue state (slots, the active form, handoff) is the
fold of :func:`botyard.dialogue.state.apply` over those dialogue events and nothing else.
Applying an event only changes fields of the aggregate: replay does no I/O.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from botyard.dialogue.state import DialogueState, from_dict, replay
from botyard.turn_record import NO_DIALOGUE, TURN_FIELDS, TurnRecord

EMPTY_DIALOGUE = DialogueState()
RECENT_MESSAGES = 64
"""How many recent proactive message ids a conversation remembers (to record a resent one once)."""
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
        """One user turn and the bot's answer (stable name: ``Conversation.TurnRecorded`` v3):
        the fields of a :class:`~botyard.turn_record.TurnRecord`, in its order (:attr:`record`).

        v2 added ``entities`` (a list of ``{entity, value, start, end, extractor,
        confidence}``); v1 events are upcast with no entities. v3 added ``dialogue`` (the
        turn's dialogue events as dicts); older events are upcast with none.
        """

        TOPIC = "botyard:Conversation.TurnRecorded"
        class_version = 3
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
        dialogue: list

        @staticmethod
        def upcast_v1_v2(state: dict) -> None:
            state["entities"] = []

        @staticmethod
        def upcast_v2_v3(state: dict) -> None:
            state["dialogue"] = []

        @property
        def record(self) -> TurnRecord:
            return TurnRecord(*(getattr(self, name) for name in TURN_FIELDS))

    class AgentReplied(Aggregate.Event):
        """A person answered the handed-off conversation (stable name:
        ``Conversation.AgentReplied`` v1): ``text`` for the user (may be empty when the agent
        only hands back), the ``agent``'s name, the dialogue events (``HandedBack`` when the
        agent handed the conversation back), whether the text was ``delivered`` as the reply to
        a user's turn waiting for it (if not, the user's next turn gets it as its reply), the
        recording ``node`` and when (``at``)."""

        TOPIC = "botyard:Conversation.AgentReplied"
        class_version = 1
        text: str
        agent: str
        dialogue: list
        delivered: bool
        node: str
        at: float

    class MessageSent(Aggregate.Event):
        """A message of the bot's that no user turn asked for (stable name:
        ``Conversation.MessageSent`` v1): the sender's ``message_id``, the ``text``, who sent
        it (``source``), its number ``seq`` among the conversation's messages (1, 2, ...),
        the recording ``node`` and when (``at``). Delivered on ``botyard.out.<tenant>.<bot>.<conversation>``."""

        TOPIC = "botyard:Conversation.MessageSent"
        class_version = 1
        message_id: str
        text: str
        source: str
        seq: int
        node: str
        at: float

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
        dialogue: list = (),  # type: ignore[assignment]
    ) -> None:
        record = TurnRecord(
            turn, turn_id, user_text, intent, confidence, reply, fallback, snapshot, node, received_at, entities, list(dialogue)
        )
        self.turns = turn
        self.last_intent = intent
        self.recent = [*self.recent[-(RECENT_TURNS - 1) :], record.reply_fields()]
        if self.__dict__.get("undelivered"):
            self.undelivered = []  # this turn's reply carried them
        if dialogue:
            self._fold(dialogue)

    @event(AgentReplied)
    def agent_replied(self, text: str, agent: str, dialogue: list, delivered: bool, node: str, at: float) -> None:
        if text and delivered and self.recent and not self.recent[-1]["reply"]:
            # the user's turn the bot was silent on: a retry of it gets the agent's answer
            self.recent = [*self.recent[:-1], {**self.recent[-1], "reply": text}]
        elif text:
            self.undelivered = [*self.undelivered_texts, text]
        if dialogue:
            self._fold(dialogue)

    @property
    def undelivered_texts(self) -> list[str]:
        """Agents' answers no user turn has carried yet: the next turn's reply carries them."""
        return list(self.__dict__.get("undelivered", ()))

    @event(MessageSent)
    def message_sent(self, message_id: str, text: str, source: str, seq: int, node: str, at: float) -> None:
        self.messages = seq
        self.message_ids = {**self.recent_message_ids, message_id: [seq, text, at]}
        if len(self.message_ids) > RECENT_MESSAGES:
            self.message_ids = dict(list(self.message_ids.items())[-RECENT_MESSAGES:])

    @property
    def message_count(self) -> int:
        """Messages sent so far (the ``seq`` of the last)."""
        return self.__dict__.get("messages", 0)

    @property
    def recent_message_ids(self) -> dict[str, list]:
        """``message_id`` -> ``[seq, text, at]`` of the last :data:`RECENT_MESSAGES` messages: a
        message sent again with one of these ids is the same message, not recorded twice."""
        return dict(self.__dict__.get("message_ids", {}))

    def _fold(self, dialogue: list) -> None:
        self.dialogue = replay(map(from_dict, dialogue), self.dialogue_state)

    @property
    def dialogue_state(self) -> DialogueState:
        """The dialogue state: the fold of every dialogue event so far (``dialogue``; absent in
        conversations without any). An aggregate snapshot stores it as its ``to_dict`` (the
        codec does that), read back here on first use."""
        raw = self.__dict__.get("dialogue")
        if raw is None:
            return EMPTY_DIALOGUE
        if isinstance(raw, dict):  # restored from an aggregate snapshot
            raw = self.__dict__["dialogue"] = DialogueState.from_dict(raw)
        return raw

    def dialogue_view(self) -> dict[str, Any]:
        """What a reply and a transcript show of the dialogue state."""
        if not self.__dict__.get("dialogue"):
            return dict(NO_DIALOGUE)
        s = self.dialogue_state
        return {"slots": {k: list(v) if isinstance(v, tuple) else v for k, v in s.slots.items()}, "form": s.form,
                "asked": s.asked, "handed_off": s.handed_off}

    def find_turn(self, turn_id: str | None) -> dict[str, Any] | None:
        """A recent turn with this client turn id (a retry of a committed turn): its
        record's ``REPLY_FIELDS`` (:func:`botyard.turn_record.reply_body` makes the reply)."""
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
            "dialogue": self.dialogue_state.to_dict(),
        }
