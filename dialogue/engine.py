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

from typing import Callable

from botyard import action_protocol as wire
from botyard.dialogue import forms
from botyard.dialogue import reply as reply_words
from botyard.dialogue.actions import MAX_CALLS, WOULD_CALL, Call, Result, check_reply
from botyard.dialogue.slots import coerce
from botyard.dialogue.spec import DialogueSpec
from botyard.dialogue.state import (
    ActionCalled,
    DialogueState,
    FallbackCounted,
    FallbacksReset,
    FormCancelled,
    HandedBack,
    SlotCleared,
    SlotSet,
    apply,
)
from botyard.dialogue.turn import Outcome, Responses, Turn, Understanding

__all__ = ["Outcome", "Responses", "Understanding", "hand_back", "resume", "run", "step"]


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


def resume(spec: DialogueSpec, responses: Responses, outcome: Outcome, understanding: Understanding, turn_number: int,
           result: Result) -> tuple[Outcome, str]:
    """The turn after its ``outcome.call`` came to ``result``: the ``ActionCalled`` event, then
    the reply's slots, words, handoff and follow-up (a refused or failed call says the action's
    ``failure`` and changes nothing else). Returns the outcome (with the follow-up as its
    ``call``) and why the reply was refused (empty if it was not)."""
    call = outcome.call
    assert call is not None
    t = Turn(spec, responses, outcome.state, understanding, turn_number)
    t.events, t.fallback, t.calls = list(outcome.events), outcome.fallback, call.index + 1
    t.parts = [outcome.reply_text] if outcome.reply_text else []
    action = spec.action(call.action)
    reply, status, error = result.reply, result.status, result.error
    refused = ""
    if action is None:  # the bot changed under a what-if: nothing to apply
        refused = f"action {call.action!r} is not declared"
    elif status in (wire.OK, wire.LATER):
        refused = check_reply(action, reply, {s.name: s for s in spec.slots}, spec.actions_by_name(), responses.intents)
        if not refused and reply.followup and t.calls >= MAX_CALLS:
            refused = f"follow-up {reply.followup!r} would be call {t.calls + 1} of this turn; the limit is {MAX_CALLS}"
        if refused:
            status, error = wire.REFUSED, refused
    t.emit(ActionCalled(call.action, result.key, status, reply.to_dict(), error, result.attempts, round(result.duration_ms, 3)))
    if status == WOULD_CALL:
        t.say_plain(f"(would call {call.action})")
    elif action is None or status in wire.FAILED:
        _say(t, call, action.failure if action is not None else "")
    else:
        _apply_reply(t, action, call, reply)
    return t.outcome(), refused


def _apply_reply(t: Turn, action, call: Call, reply) -> None:
    for name, raw in reply.slots.items():
        value, _ = coerce(t.spec.slot(name), raw)
        if t.state.slots.get(name) != value:
            t.emit(SlotSet(name, value, "action"))  # type: ignore[arg-type]
    for name in reply.clear:
        if name in t.state.slots:
            t.emit(SlotCleared(name, "action"))
    named = action.response(reply.response) if reply.response else None
    said = True
    if reply.text:
        t.say_plain(reply.text)
    elif named is not None:
        _say(t, call, named)
    elif reply.response and reply.response in t.responses.intents:
        t.respond(reply.response)
    elif call.respond and not reply.followup:
        t.respond(call.respond)
    else:
        said = False
    if reply.handoff:
        t.hand_off(reply.handoff)
    elif reply.followup:
        t.call_action(reply.followup, respond="" if said else call.respond, form=call.form)


def _say(t: Turn, call: Call, text: str) -> None:
    """Say ``text`` with placeholders read from the slots as the call saw them and as they are
    now (a form that ended with the call may have cleared its slots)."""
    if text:
        t.say_plain(reply_words.render(text, reply_words.values({**call.slots, **t.state.slots}, t.u.entities)))


def run(spec: DialogueSpec, responses: Responses, state: DialogueState, understanding: Understanding, turn_number: int,
        results: Callable[[Call], Result]) -> Outcome:
    """:func:`step`, then every call it reaches answered by ``results`` at once (replay and
    what-if give the recorded results; the live node calls asynchronously and resumes)."""
    outcome = step(spec, responses, state, understanding, turn_number)
    while outcome.call is not None:
        outcome, _ = resume(spec, responses, outcome, understanding, turn_number, results(outcome.call))
    return outcome


def recorded_results(events) -> Callable[[Call], Result]:
    """Results from a turn's recorded dialogue events: each call takes the next recorded
    ``ActionCalled`` of its action; one the turn did not make is :data:`WOULD_CALL` (never called)."""
    pending = [e for e in events if isinstance(e, ActionCalled)]

    def results(call: Call) -> Result:
        for i, e in enumerate(pending):
            if e.action == call.action:
                return Result.recorded(pending.pop(i))
        return Result(WOULD_CALL)

    return results


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
    elif t.rule_action:
        t.call_action(t.rule_action, respond=u.intent)
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
