"""Actions in the pure engine: a step that reaches an action ends with its call; resume applies
the result; replay of the recorded events gives the same state; what-if never calls again."""

from __future__ import annotations

import copy

import pytest

from botyard import action_protocol as wire
from botyard.action_protocol import ActionReply
from botyard.dialogue.actions import WOULD_CALL, Result
from botyard.dialogue.engine import Responses, Understanding, recorded_results, resume, run, step
from botyard.dialogue.errors import DialogueDefinitionError
from botyard.dialogue.spec import parse_spec
from botyard.dialogue.state import ActionCalled, DialogueState, SlotSet, from_dict, replay, to_dict
from tests.dialogue.shop import SHOP

ACTIONS = {
    "look_up_order": {"timeout": 1, "retries": 2, "failure": "Our order system is down, sorry.", "slots": ["order_state"],
                      "responses": {"shipped": "Order {order_number} has shipped."}},
    "check_stock": {},
    "notify": {"slots": ["order_state"]},
}


def bot(**changes):
    data = copy.deepcopy(SHOP)
    d = data["dialogue"]
    d["slots"]["order_state"] = {"type": "categorical", "values": ["processing", "shipped"]}
    d["actions"] = copy.deepcopy(ACTIONS)
    d["forms"]["returns"]["action"] = "look_up_order"
    d["rules"] = [*d.get("rules", []), {"intent": "opening_hours", "action": "check_stock"}]
    for key, value in changes.items():
        d[key] = value
    definition, spec = parse_spec(data)
    return spec, Responses.of(definition)


def u(intent, text="", **entities):
    return Understanding(intent, 0.99, tuple({"entity": k, "value": v, "start": 0, "end": 1} for k, v in entities.items()), text)


def test_a_rule_calls_its_action_and_the_reply_is_said():
    spec, responses = bot()
    out = step(spec, responses, DialogueState(), u("opening_hours", "when are you open"), 1)
    assert out.call is not None and out.call.action == "check_stock" and out.call.respond == "opening_hours"
    done, refused = resume(spec, responses, out, u("opening_hours"), 1, Result(wire.OK, ActionReply(text="Open till 8 today."), key="k"))
    assert not refused and done.call is None
    assert done.reply_text == "Open till 8 today."
    called = [e for e in done.events if isinstance(e, ActionCalled)]
    assert called == [ActionCalled("check_stock", "k", "ok", {"text": "Open till 8 today."}, "", 0, 0.0)]


def test_an_empty_reply_says_the_intents_response():
    spec, responses = bot()
    out = step(spec, responses, DialogueState(), u("opening_hours"), 1)
    done, _ = resume(spec, responses, out, u("opening_hours"), 1, Result(wire.OK))
    assert done.reply_text == "We're open 8:00-20:00."


def test_a_completed_form_calls_with_its_slots_then_the_reply_sets_slots():
    spec, responses = bot()
    state = DialogueState()
    out = step(spec, responses, state, u("returns", "return 4821377", order_number="4821377", product="tent"), 1)
    assert out.call is None and out.state.asked == "reason"
    out = step(spec, responses, out.state, u("unknown", "it is too small"), 2)
    assert out.call is None and out.state.confirming
    out = step(spec, responses, out.state, u("affirm", "yes"), 3)
    assert out.call is not None and out.call.form == "returns"
    assert out.call.slots == {"order_number": "4821377", "item": "tent", "reason": "it is too small"}
    reply = ActionReply(response="shipped", slots={"order_state": "shipped"})
    done, refused = resume(spec, responses, out, u("affirm", "yes"), 3, Result(wire.OK, reply, key="c:3:0", attempts=1))
    assert not refused
    assert done.reply_text == "Order 4821377 has shipped." or done.reply_text.endswith("has shipped.")
    assert done.state.slots["order_state"] == "shipped" and done.state.form is None
    assert SlotSet("order_state", "shipped", "action") in done.events
    # the recorded events replay to the same state, read back from their dicts
    assert replay([from_dict(to_dict(e)) for e in done.events], step_state_before(spec, responses)) == done.state


def step_state_before(spec, responses):
    state = DialogueState()
    for i, (intent, text, ents) in enumerate([("returns", "return 4821377", {"order_number": "4821377", "product": "tent"}),
                                               ("unknown", "it is too small", {})], start=1):
        state = step(spec, responses, state, u(intent, text, **ents), i).state
    return state


@pytest.mark.parametrize("status", [wire.TIMEOUT, wire.NO_RESPONDERS, wire.ERROR])
def test_a_failed_call_says_the_failure_response_and_changes_no_slot(status):
    spec, responses = bot()
    state = step_state_before(spec, responses)
    out = step(spec, responses, state, u("affirm", "yes"), 3)
    done, _ = resume(spec, responses, out, u("affirm", "yes"), 3, Result(status, error="nobody answered", attempts=3))
    assert done.reply_text == "Our order system is down, sorry."
    assert "order_state" not in done.state.slots
    called = next(e for e in done.events if isinstance(e, ActionCalled))
    assert called.status == status and called.attempts == 3


@pytest.mark.parametrize("reply, why", [
    (ActionReply(slots={"vip": True}), "does not declare"),
    (ActionReply(slots={"order_state": "lost"}), "order_state"),
    (ActionReply(clear=("item",)), "does not declare"),
    (ActionReply(response="nope"), "neither"),
    (ActionReply(followup="missing"), "not an action"),
])
def test_a_reply_breaking_the_declaration_is_refused_with_the_failure_response(reply, why):
    spec, responses = bot()
    out = step(spec, responses, step_state_before(spec, responses), u("affirm", "yes"), 3)
    done, refused = resume(spec, responses, out, u("affirm", "yes"), 3, Result(wire.OK, reply))
    assert why in refused
    assert done.reply_text == "Our order system is down, sorry."
    assert next(e for e in done.events if isinstance(e, ActionCalled)).status == wire.REFUSED


def test_a_follow_up_is_called_next_and_handoff_hands_off():
    spec, responses = bot()
    out = step(spec, responses, DialogueState(), u("opening_hours"), 1)
    out, _ = resume(spec, responses, out, u("opening_hours"), 1, Result(wire.OK, ActionReply(followup="notify")))
    assert out.call is not None and out.call.action == "notify" and out.call.index == 1
    out, _ = resume(spec, responses, out, u("opening_hours"), 1, Result(wire.OK, ActionReply(handoff="vip customer")))
    assert out.state.handed_off and out.call is None


def test_replay_and_whatif_use_the_recorded_result_and_never_call():
    spec, responses = bot()
    live = run(spec, responses, DialogueState(), u("opening_hours"), 1, lambda call: Result(wire.OK, ActionReply(text="8-20")))
    calls = []
    again = run(spec, responses, DialogueState(), u("opening_hours"), 1, lambda c: calls.append(c) or recorded_results(live.events)(c))
    assert again.reply_text == "8-20" and again.events == live.events
    # a re-run reaching an action the recorded turn did not call: "would call", not a call
    other = run(spec, responses, DialogueState(), u("opening_hours"), 1, recorded_results(()))
    assert other.reply_text == "(would call check_stock)"
    assert next(e for e in other.events if isinstance(e, ActionCalled)).status == WOULD_CALL


def test_declarations_are_validated_with_every_problem_at_once():
    with pytest.raises(DialogueDefinitionError) as err:
        bot(actions={"bad name!": {}, "a": {"timeout": 0, "retries": 9, "slots": ["nope"], "colour": 1}, "b": "x"},
            rules=[{"intent": "greeting", "action": "undeclared"}])
    text = str(err.value)
    for needle in ("bad name!", "a.timeout", "a.retries", "a.slots[0]", "a.colour", "actions.b", "rules[0].action",
                   "forms.returns.action"):
        assert needle in text, needle


def test_a_bot_without_actions_is_unchanged():
    definition, spec = parse_spec(copy.deepcopy(SHOP))
    out = step(spec, Responses.of(definition), DialogueState(), u("opening_hours"), 1)
    assert out.call is None and out.reply_text == "We're open 8:00-20:00."
