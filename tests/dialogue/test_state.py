"""Dialogue state and its events: apply is pure and total, events round-trip through their
stored dicts, versions are checked and older ones upcast."""

import pytest

from botyard.dialogue import state as st
from botyard.dialogue.errors import EventFormatError
from botyard.dialogue.state import (
    EVENTS,
    ActionCalled,
    ConfirmationAnswered,
    ConfirmationAsked,
    DialogueState,
    FallbackCounted,
    FallbacksReset,
    FormAbandoned,
    FormCancelled,
    FormCompleted,
    FormStarted,
    HandedBack,
    HandedOff,
    SlotAsked,
    SlotCleared,
    SlotRejected,
    SlotSet,
    apply,
    from_dict,
    replay,
    to_dict,
)

ONE_OF_EACH = [
    FormStarted("returns"), SlotAsked("order_number", 0), SlotRejected("order_number", "12345", "too short"),
    SlotSet("order_number", "4821377", "answer"), SlotSet("items", ("tent", "boots")), SlotCleared("items", "rule"),
    SlotAsked("reason", 0), FormAbandoned("returns", "reason"), FormStarted("returns"), ConfirmationAsked("returns"),
    ConfirmationAnswered("returns", False), FormCancelled("returns", "denied"), FormCompleted("returns"),
    FallbackCounted(), FallbacksReset(), HandedOff("intent"), HandedBack(),
    ActionCalled("look_up_order", "c1:3:0", "ok", {"text": "It shipped.", "slots": {"order_state": "shipped"}}, "", 1, 12.5),
]


def test_the_event_set():
    assert sorted(EVENTS) == sorted({type(e).__name__ for e in ONE_OF_EACH}) and len(EVENTS) == 15
    assert all(cls.version == 1 and cls.name == name for name, cls in EVENTS.items())


def test_apply():
    s = replay(ONE_OF_EACH[:3])
    assert (s.form, s.asked, s.tries, s.asks["order_number"]) == ("returns", "order_number", 1, 1)
    s = apply(s, SlotAsked("order_number", 1))  # asked again: the tries stay
    assert s.tries == 1 and s.asks["order_number"] == 2
    s = apply(s, SlotSet("order_number", "4821377", "answer"))
    assert s.asked is None and s.tries == 0 and s.slots == {"order_number": "4821377"}
    s = apply(apply(s, ConfirmationAsked("returns")), ConfirmationAnswered("returns", True))
    assert not s.confirming
    s = apply(s, FormCompleted("returns"))
    assert s.form is None and s.slots == {"order_number": "4821377"}
    s = apply(apply(apply(s, FallbackCounted()), FallbackCounted()), HandedOff("escalation"))
    assert s.handed_off and s.fallbacks == 0
    assert not apply(s, HandedBack()).handed_off
    with pytest.raises(TypeError):
        apply(s, "SlotSet")


def test_state_is_frozen_and_round_trips():
    s = replay(ONE_OF_EACH[:5])
    with pytest.raises(TypeError):
        s.slots["x"] = 1
    with pytest.raises(AttributeError):
        s.form = None
    assert DialogueState.from_dict(s.to_dict()) == s and s.slots["items"] == ("tent", "boots")
    assert replay([]) == DialogueState()


@pytest.mark.parametrize("event", ONE_OF_EACH)
def test_events_round_trip_and_apply_anywhere(event):
    stored = to_dict(event)
    assert stored["name"] == type(event).__name__ and stored["version"] == 1
    assert from_dict(stored) == event
    for prefix in range(len(ONE_OF_EACH)):
        apply(replay(ONE_OF_EACH[:prefix]), event)  # total: never fails on a recorded event


def test_stored_form_is_plain():
    assert to_dict(SlotSet("items", ("tent",))) == {"name": "SlotSet", "version": 1, "slot": "items", "value": ["tent"], "by": "entity"}


@pytest.mark.parametrize("data, words", [
    ({"name": "SlotGuessed", "version": 1}, "unknown dialogue event"),
    ({"name": "SlotSet", "version": 2, "slot": "a", "value": 1}, "newer than"),
    ({"name": "SlotSet", "slot": "a", "value": 1}, "no valid version"),
    ({"name": "SlotSet", "version": 1, "slot": "a", "value": 1, "colour": "red"}, "unknown fields"),
    ({"name": "SlotSet", "version": 1, "value": 1}, "slot"),
])
def test_bad_stored_events(data, words):
    with pytest.raises(EventFormatError, match=words):
        from_dict(data)


def test_older_versions_are_upcast(monkeypatch):
    monkeypatch.setattr(SlotSet, "version", 2)
    with pytest.raises(EventFormatError, match="no upcaster"):
        from_dict({"name": "SlotSet", "version": 1, "slot": "a", "value": 1})
    rename = lambda d: {**{k: v for k, v in d.items() if k != "source"}, "by": d.get("source", "entity")}
    monkeypatch.setitem(st.UPCASTERS, ("SlotSet", 1), rename)
    assert from_dict({"name": "SlotSet", "version": 1, "slot": "a", "value": 1, "source": "rule"}) == SlotSet("a", 1, "rule")
