"""Fallback escalation, handoff and back, conditional responses, rules, bots without a
dialogue section, and replay over generated conversations."""

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from botyard.dialogue.engine import Responses, Understanding, hand_back, step
from botyard.dialogue.responses import respond
from botyard.dialogue.spec import DialogueSpec, parse_dialogue, parse_spec
from botyard.dialogue.state import DialogueState, from_dict, replay, to_dict

from .shop import SHOP, Chat, said, shop


def test_escalation_after_two_fallbacks_in_a_row_hands_off_and_back():
    chat = Chat()
    assert chat("blorp", fallback=True) == "Sorry, I didn't get that."
    assert chat.names == ["FallbackCounted"] and chat.last.fallback
    assert chat("hello", "greeting", 0.9) == "Hello! How can I help?"
    assert chat.names == ["FallbacksReset"]  # not in a row any more
    chat("blorp", fallback=True)
    assert chat("zzz", fallback=True) == "I'm not getting it, sorry. Let me find a colleague."
    assert chat.names == ["FallbackCounted", "FallbacksReset", "HandedOff"] and chat.last.fallback
    assert chat.state.handed_off and chat.state.fallbacks == 0

    # handed off: the bot says nothing and changes nothing, whatever the user says
    assert chat("I want to return order 4821377", "returns", 0.99) == "" and chat.last.events == ()

    back = hand_back(chat.spec, chat.state)
    assert back.reply_text == "You're back with the bot." and [e.name for e in back.events] == ["HandedBack"]
    assert replay(back.events, chat.state) == back.state and not back.state.handed_off
    assert hand_back(chat.spec, back.state).events == ()


def test_escalation_without_handoff_and_configurable_count():
    chat = Chat(shop(escalation={"after": 3, "response": "Try asking about returns."}))
    assert [chat("x", fallback=True) for _ in range(4)] == [
        "Sorry, I didn't get that.", "Sorry, I didn't get that.", "Try asking about returns.", "Sorry, I didn't get that."]
    assert not chat.state.handed_off


def test_fallbacks_during_a_form_are_bad_answers_not_escalation():
    chat = Chat()
    chat("return something", "returns", 0.9)
    chat("blorp", fallback=True)
    assert chat.state.fallbacks == 0 and chat.state.tries == 1


def test_handoff_intent():
    chat = Chat()
    assert chat("human please", "talk_to_human", 0.9) == "Handing you over."
    assert chat.names == ["HandedOff"] and chat.last.events[0].reason == "intent"
    chat = Chat(shop(handoff={"intents": ["talk_to_human"], "message": "A colleague will answer, {order_number}."}))
    assert chat("human please, order 4821377", "talk_to_human", 0.9) == "A colleague will answer, 4821377."


def test_conditional_responses_depend_on_slots():
    chat = Chat()
    assert chat("how much is shipping", "shipping_costs", 0.9) == "Shipping is 4.95 EUR."
    assert chat("shipping to Belgium?", "shipping_costs", 0.9, countries=["Belgium"]) == "Shipping to Belgium is free over 30 EUR."
    # the slot stays: a later turn without the entity still gets the Belgian answer
    assert chat("and how much is shipping", "shipping_costs", 0.9) == "Shipping to Belgium is free over 30 EUR."
    chat("something else", "new_topic", 0.9)  # the rule clears delivery_country
    assert "delivery_country" not in chat.state.slots
    assert chat("shipping to Germany?", "shipping_costs", 0.9, countries=["Germany"]) == "Shipping to Germany is 4.95 EUR."


def test_rules_set_and_clear_slots_on_an_intent_when_their_condition_holds():
    chat = Chat()
    chat("hi", "greeting", 0.9)
    assert "vip" not in chat.state.slots  # when: order_number (unset)
    chat("order 4821377", "new_topic", 0.2)
    chat("hi again", "greeting", 0.9)
    assert chat.state.slots["vip"] is True and chat.last.events[-1].by == "rule"
    assert chat("shipping to Austria?", "shipping_costs", 0.9, countries=["Austria"]) == "Shipping is free for you, Austria."
    chat("another question", "new_topic", 0.9)
    assert chat.names == ["SlotCleared", "SlotCleared"] and set(chat.state.slots) == {"order_number"}


def test_a_bot_without_dialogue_answers_exactly_as_respond(old_example_bot):
    example_bot = old_example_bot
    spec = parse_dialogue(example_bot)
    assert spec == DialogueSpec()
    responses = Responses.of(example_bot)
    state = DialogueState()
    turns = [("order_status", "where is 48213", [{"entity": "order_number", "value": "48213", "start": 9, "end": 14}]),
             ("shipping_costs", "to austria", [{"entity": "country", "value": "austria", "start": 3, "end": 10}]),
             ("shipping_costs", "shipping", []), ("greeting", "hi", []), ("delivery_times", "how long", []), ("talk_to_human", "agent", [])]
    for number in range(1, 8):
        for intent, text, found in turns:
            for fallback in (False, True):
                out = step(spec, responses, state, Understanding(intent, 0.9, found, text, fallback), number)
                assert out.reply_text == respond(example_bot, intent, fallback, number, found)
                assert out.events == () and out.state == state and out.fallback == fallback


def test_unknown_intent_is_a_fallback():
    chat = Chat()
    assert chat("what", "no_such_intent", 0.99) == "Sorry, I didn't get that." and chat.last.fallback


# -- replay over generated conversations ------------------------------------------------

TURNS = [
    ("I want to return something", "returns", 0.97), ("return the tent from order 4821377", "returns", 0.95),
    ("4821377", "new_topic", 0.2), ("4821378", "new_topic", 0.2), ("12345", "new_topic", 0.2), ("the boots", "new_topic", 0.3),
    ("a lamp", "new_topic", 0.3), ("it leaks", "returns", 0.5), ("yes", "new_topic", 0.2), ("no", "new_topic", 0.2),
    ("no, the order is 4821379", "new_topic", 0.3), ("never mind", "new_topic", 0.3), ("when are you open", "opening_hours", 0.95),
    ("human please", "talk_to_human", 0.95), ("blorp", "new_topic", 0.1), ("hi", "greeting", 0.9),
    ("shipping to Belgium", "shipping_costs", 0.9), ("another question", "new_topic", 0.9), ("stop", "new_topic", 0.3),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(range(len(TURNS))), st.booleans(), st.booleans()), max_size=25))
def test_replaying_the_events_from_empty_gives_the_same_state_after_every_turn(script):
    definition, spec = parse_spec(copy.deepcopy(SHOP))
    responses = Responses.of(definition)
    state, log = DialogueState(), []
    for number, (i, fallback, back) in enumerate(script, 1):
        text, intent, confidence = TURNS[i]
        if back and state.handed_off:
            out = hand_back(spec, state)
        else:
            u = said(text, intent, confidence, fallback=fallback and confidence < 0.5,
                     countries=["Belgium"] if "Belgium" in text else ())
            out = step(spec, responses, state, u, number)
        assert out.reply_text or state.handed_off
        log.extend(to_dict(e) for e in out.events)
        state = out.state
        assert replay(from_dict(d) for d in log) == state  # through the stored form, from empty
        form = spec.form(state.form)
        assert state.asked is None or (form is not None and state.asked in form.slots and state.asked not in state.slots)
        assert not state.confirming or (form is not None and all(s in state.slots for s in form.slots))
        assert not (state.handed_off and state.form)
