"""Forms: an intent that needs slots asks for each missing one in order, reads the answers,
re-asks after a bad one, gives up after too many, takes digressions, corrections and
cancels, and confirms before the intent's response when it has a ``confirm`` text.

While a form waits for a slot, the user's turn is read in this order: a cancel; a handoff
intent (when clearly one); the entities (the answer, other slots of the form, corrections of
filled ones); another of the bot's intents when it clearly is one (a digression: answered,
then the form's question again); the text itself for a ``from_text`` slot; else a bad answer.
"""

from __future__ import annotations

from botyard.dialogue.slots import coerce, from_text
from botyard.dialogue.spec import Form
from botyard.dialogue.state import (
    ConfirmationAnswered,
    ConfirmationAsked,
    FormAbandoned,
    FormCancelled,
    FormCompleted,
    FormStarted,
    SlotAsked,
    SlotRejected,
    SlotSet,
)
from botyard.dialogue.turn import Turn


def start(t: Turn, form: Form) -> None:
    t.emit(FormStarted(form.intent))
    t.absorb()
    advance(t)


def advance(t: Turn) -> None:
    """Ask for the first missing slot, or confirm, or complete."""
    form = t.form()
    assert form is not None
    missing = [name for name in form.slots if name not in t.state.slots]
    if missing:
        ask(t, missing[0])
    elif form.confirm:
        t.emit(ConfirmationAsked(form.intent))
        t.say(form.confirm)
    else:
        t.end_form(FormCompleted(form.intent), respond=form.intent)


def ask(t: Turn, name: str) -> None:
    slot = t.spec.slot(name)
    phrasing = t.state.asks.get(name, 0) % len(slot.questions)
    t.emit(SlotAsked(name, phrasing))
    t.say(slot.questions[phrasing])


def cancel(t: Turn, reason: str) -> None:
    form = t.form()
    assert form is not None
    text = (form.denied or t.spec.messages.denied) if reason == "denied" else t.spec.messages.cancelled
    t.end_form(FormCancelled(form.intent, reason), text)


def take_turn(t: Turn) -> None:
    """A turn while a form is active."""
    if t.said == "cancel":
        cancel(t, "user")
    elif t.u.intent in t.spec.handoff.intents and t.clearly_other():
        t.hand_off("intent", say=True)
    elif t.state.confirming:
        _confirmation(t)
    else:
        _answer(t)


def _confirmation(t: Turn) -> None:
    form = t.form()
    assert form is not None
    absorbed = t.absorb()
    for name in absorbed.rejected:
        _reask_text(t, name)
    if absorbed.corrected or absorbed.filled:  # "no, the order is 4821378": confirm the new values
        t.say(t.spec.messages.corrected)
        advance(t)
    elif absorbed.rejected:
        advance(t)
    elif t.said == "affirm":
        t.emit(ConfirmationAnswered(form.intent, True))
        t.end_form(FormCompleted(form.intent), respond=form.intent)
    elif t.said == "deny":
        t.emit(ConfirmationAnswered(form.intent, False))
        cancel(t, "denied")
    elif t.clearly_other():
        _digress(t)
    else:
        t.say(t.spec.messages.confirm_again)
        advance(t)


def _answer(t: Turn) -> None:
    form = t.form()
    assert form is not None
    asked = t.state.asked
    if asked is None or asked not in form.slots or asked in t.state.slots or not _known(t, asked):
        advance(t)  # nothing (valid) is waiting: the bot changed under the conversation
        return
    slot = t.spec.slot(asked)
    absorbed = t.absorb()
    if absorbed.corrected:
        t.say(t.spec.messages.corrected)
    if asked in absorbed.rejected:
        _rejected(t, asked)
        return
    for name in absorbed.rejected:
        _reask_text(t, name)
    if absorbed.filled or absorbed.corrected or absorbed.rejected:
        advance(t)
    elif t.clearly_other():
        _digress(t)
    elif slot.from_text and (raw := from_text(slot, t.u.text, t.said)) is not None:
        value, why = coerce(slot, raw)
        if why:
            t.emit(SlotRejected(asked, raw, why))
            _rejected(t, asked)
        else:
            t.emit(SlotSet(asked, value, "answer"))  # type: ignore[arg-type]
            advance(t)
    else:
        t.emit(SlotRejected(asked, None, "no answer"))
        _rejected(t, asked)


def _known(t: Turn, name: str) -> bool:
    return any(s.name == name for s in t.spec.slots)


def _rejected(t: Turn, name: str) -> None:
    """After a bad answer to the asked slot: re-ask, or give up after its ``max_tries``."""
    form, slot = t.form(), t.spec.slot(name)
    assert form is not None
    if t.state.tries >= slot.max_tries:
        t.end_form(FormAbandoned(form.intent, name), form.give_up or t.spec.messages.give_up)
    elif slot.reask:
        t.say(slot.reask)
    else:
        t.say(t.spec.messages.reask)
        ask(t, name)


def _reask_text(t: Turn, name: str) -> None:
    t.say(t.spec.slot(name).reask or t.spec.messages.reask)


def _digress(t: Turn) -> None:
    """Answer the other intent, then go back to the form (its rules may change slots)."""
    t.run_rules(t.u.intent)
    t.respond(t.u.intent)
    if t.form() is not None:
        advance(t)
