"""The dialogue step: from the state and what the classifier understood, the reply and the
events that change the state. Pure: no I/O, no clock, no randomness.

``step(spec, responses, state, understanding, turn_number)``:

- handed off: the bot is silent (an agent answers; :func:`hand_back` ends it);
- a form is active: :mod:`botyard.dialogue.forms` reads the turn;
- a fallback turn: the fallback response; with ``escalation``, the n-th in a row gets the
  escalation response instead (and a handoff when it says so);
- otherwise the intent: its rules set and clear slots, entities fill slots, then it hands
  off, starts its form, or gets its response (conditional ones first, placeholders filled).

A bot without a ``dialogue`` section emits no events and answers exactly as
:func:`botyard.dialogue.responses.respond`.
"""

from __future__ import annotations

from botyard.dialogue import forms
from botyard.dialogue.spec import DialogueSpec
from botyard.dialogue.state import DialogueState, FallbackCounted, FallbacksReset, FormCancelled, HandedBack, apply
from botyard.dialogue.turn import Outcome, Responses, Turn, Understanding

__all__ = ["Outcome", "Responses", "Understanding", "hand_back", "step"]


def step(spec: DialogueSpec, responses: Responses, state: DialogueState, understanding: Understanding, turn_number: int) -> Outcome:
    t = Turn(spec, responses, state, understanding, turn_number)
    if state.handed_off:
        return t.outcome()
    if state.form is not None and t.form() is None:
        t.emit(FormCancelled(state.form, "removed"))  # the bot no longer has this form
    if t.form() is not None:
        forms.take_turn(t)
    else:
        _intent(t)
    return t.outcome()


def hand_back(spec: DialogueSpec, state: DialogueState) -> Outcome:
    """An agent hands the conversation back to the bot."""
    if not state.handed_off:
        return Outcome("", (), False, state)
    event = HandedBack()
    return Outcome(spec.handoff.back, (event,), False, apply(state, event))


def _intent(t: Turn) -> None:
    u = t.u
    if u.fallback or u.intent not in t.responses.intents:
        _fallback(t)
        return
    if t.state.fallbacks:
        t.emit(FallbacksReset())
    t.run_rules(u.intent)
    form = t.spec.form(u.intent)
    if form is not None:
        forms.start(t, form)
        return
    t.absorb()
    if u.intent in t.spec.handoff.intents:
        t.hand_off("intent", say=True)
    else:
        t.respond(u.intent)


def _fallback(t: Turn) -> None:
    t.fallback = True
    escalation = t.spec.escalation
    if escalation is None:
        t.say_plain(t.responses.fallback)
        return
    t.emit(FallbackCounted())
    if t.state.fallbacks < escalation.after:
        t.say_plain(t.responses.fallback)
        return
    t.emit(FallbacksReset())
    t.say(escalation.response)
    if escalation.handoff:
        t.hand_off("escalation")
