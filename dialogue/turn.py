"""One turn being decided: the state so far, the events emitted, the words said.

Every change goes through :meth:`Turn.emit`, which applies the event at once: what the
engine reads after an event is exactly ``replay`` of the events so far, so the state a
later replay derives is the state the engine assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from botyard.dialogue import reply
from botyard.dialogue.actions import Call
from botyard.dialogue.conditions import holds
from botyard.dialogue.slots import coerce
from botyard.dialogue.spec import DialogueSpec, Form
from botyard.dialogue.state import (
    DialogueEvent,
    DialogueState,
    FormCancelled,
    FormCompleted,
    HandedOff,
    SlotCleared,
    SlotRejected,
    SlotSet,
    apply,
)


@dataclass(frozen=True, slots=True)
class Understanding:
    """What the classifier made of the user's text."""

    intent: str
    confidence: float = 1.0
    entities: tuple[Mapping[str, Any], ...] = ()
    """``{entity, value, start, end}`` each, as the model finds them."""
    text: str = ""
    fallback: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "entities", tuple(self.entities))

    @classmethod
    def of(cls, prediction, text: str) -> "Understanding":
        """From a :class:`~botyard.models.prediction.Prediction` of ``text``."""
        return cls(prediction.intent, prediction.confidence, tuple(e.to_dict() for e in prediction.entities), text,
                   prediction.fallback)


@dataclass(frozen=True, slots=True)
class Responses:
    """The bot's own responses per intent, and its fallback response."""

    intents: Mapping[str, tuple[str, ...]]
    fallback: str

    @classmethod
    def of(cls, definition) -> "Responses":
        """From a :class:`~botyard.models.definition.BotDefinition`."""
        return cls({i.name: i.responses for i in definition.intents}, definition.fallback.response)


@dataclass(frozen=True, slots=True)
class Outcome:
    reply_text: str
    """What the bot says; empty while the conversation is handed off (an agent answers)."""
    events: tuple[DialogueEvent, ...]
    """The dialogue events to commit with the turn, in order."""
    fallback: bool
    """The turn got the fallback (or the escalation) response."""
    state: DialogueState = field(default_factory=DialogueState)
    """The state after the events (``replay(events, state_before)``)."""
    call: Call | None = None
    """An action to call before the turn is complete: its result goes to
    :func:`botyard.dialogue.engine.resume`, which adds its events and words."""


@dataclass(slots=True)
class Absorbed:
    """What the turn's entities did to the active form's slots."""

    filled: list[str] = field(default_factory=list)
    corrected: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


class Turn:
    def __init__(self, spec: DialogueSpec, responses: Responses, state: DialogueState, understanding: Understanding, number: int):
        self.spec, self.responses, self.state, self.u, self.number = spec, responses, state, understanding, number
        self.events: list[DialogueEvent] = []
        self.parts: list[str] = []
        self.fallback = False
        self.call: Call | None = None
        self.calls = 0
        """Calls this turn made before this step (a resumed turn counts on)."""
        self.rule_action = ""
        """The action of the first rule of the turn's intent that holds and has one."""
        self._said: str | None | bool = False  # not looked at yet

    @property
    def said(self) -> str | None:
        """``cancel``, ``affirm``, ``deny`` or None: what the turn is of the built-ins (read
        only by forms, so only a turn with an active form pays for it)."""
        if self._said is False:
            self._said = self.spec.builtins.recognise(self.u.intent, self.confident(), self.u.text)
        return self._said  # type: ignore[return-value]

    def emit(self, event: DialogueEvent) -> None:
        self.events.append(event)
        self.state = apply(self.state, event)

    def say(self, text: str) -> None:
        if text:
            self.parts.append(reply.render(text, reply.values(self.state.slots, self.u.entities)))

    def say_plain(self, text: str) -> None:
        self.parts.append(text)

    def respond(self, intent: str) -> None:
        self.parts.append(reply.respond(self.responses.intents[intent], self.spec.conditional(intent), self.number,
                                        self.state.slots, self.u.entities))

    def outcome(self) -> Outcome:
        return Outcome(" ".join(self.parts), tuple(self.events), self.fallback, self.state, self.call)

    def call_action(self, name: str, *, respond: str = "", form: str | None = None) -> None:
        """End the step with a call of action ``name`` (the slots as they are now); the reply's
        text, else ``respond``'s response, is said when its result comes."""
        self.call = Call(name, self.calls, dict(self.state.slots), form or self.state.form, respond)

    def form(self) -> Form | None:
        return self.spec.form(self.state.form)

    def confident(self) -> bool:
        u = self.u
        return not u.fallback and u.confidence >= self.spec.digression_confidence

    def clearly_other(self) -> bool:
        """The turn is clearly another of the bot's intents, not an answer to the form."""
        intent = self.u.intent
        return (self.confident() and intent in self.responses.intents and intent != self.state.form
                and intent not in self.spec.builtins.intents)

    def run_rules(self, intent: str) -> None:
        for rule in self.spec.rules:
            if intent in rule.intents and holds(rule.when, self.state.slots):
                if rule.action and not self.rule_action:
                    self.rule_action = rule.action
                for slot, value in rule.set:
                    if self.state.slots.get(slot) != value:
                        self.emit(SlotSet(slot, value, "rule"))
                for slot in rule.clear:
                    if slot in self.state.slots:
                        self.emit(SlotCleared(slot, "rule"))

    def absorb(self) -> Absorbed:
        """Fill slots from the turn's entities, each as its ``fill`` rule allows; a form slot
        that already had another value is corrected, an invalid value for one is rejected."""
        form = self.form()
        needed = set(form.slots) if form else set()
        out = Absorbed()
        for slot in self.spec.slots:
            raws = [e["value"] for e in self.u.entities if slot.entity and e.get("entity") == slot.entity]
            if not raws or (slot.fill == "form" and slot.name not in needed) or (slot.fill == "asked" and slot.name != self.state.asked):
                continue
            candidates = [tuple(str(r) for r in raws)] if slot.type == "list" else raws
            checked = [coerce(slot, raw) for raw in candidates]
            good = [value for value, why in checked if not why]
            if not good:
                if slot.name in needed:
                    self.emit(SlotRejected(slot.name, candidates[0], checked[0][1]))
                    out.rejected.append(slot.name)
                continue
            current = self.state.slots.get(slot.name)
            value = next((v for v in good if v != current), good[0])
            if value == current:
                continue
            by = "answer" if slot.name == self.state.asked else "correction" if slot.name in needed and current is not None else "entity"
            self.emit(SlotSet(slot.name, value, by))
            if slot.name in needed:
                (out.corrected if by == "correction" else out.filled).append(slot.name)
        return out

    def end_form(self, event: DialogueEvent, text: str = "", *, respond: str = "") -> None:
        """End the active form with ``event``, say ``text`` (or the intent's response), and
        clear the form's slots unless it keeps them."""
        form = self.form()
        self.emit(event)
        if respond and form is not None and form.action and isinstance(event, FormCompleted):
            self.call_action(form.action, respond=respond, form=form.intent)  # the call sees the slots before they are cleared
        elif respond:
            self.respond(respond)
        else:
            self.say(text)
        if form is not None and not form.keep_slots:
            for name in form.slots:
                if name in self.state.slots:
                    self.emit(SlotCleared(name, "form"))

    def hand_off(self, reason: str, *, say: bool = False) -> None:
        """Hand the conversation to a person (``say``: with the handoff message, or else the
        turn's intent's response); an active form is cancelled, its slots kept for the agent."""
        if say and self.spec.handoff.message:
            self.say(self.spec.handoff.message)
        elif say:
            self.respond(self.u.intent)
        if self.state.form is not None:
            self.emit(FormCancelled(self.state.form, "handoff"))
        self.emit(HandedOff(reason))
