"""Forms over several turns: asking in order, digressions, corrections, cancels, bad answers,
confirmations answered both ways. Every Chat turn also checks that replay gives its state."""

from botyard.dialogue.state import SlotRejected, SlotSet

from .shop import Chat, shop


def start(chat: Chat, text: str = "I want to return something") -> str:
    return chat(text, "returns", 0.97)


def test_form_over_several_turns_with_digression_bad_answer_correction_and_confirmation():
    chat = Chat()
    assert start(chat) == "What's your order number?"
    assert chat.names == ["FormStarted", "SlotAsked"] and chat.state.asked == "order_number"

    # a digression: answered, then the question again (the next phrasing)
    assert chat("when are you open?", "opening_hours", 0.95) == "We're open 8:00-20:00. Which order is it?"
    assert chat.state.form == "returns" and chat.state.tries == 0

    # an order number of the wrong shape: the slot's re-ask message, one try used
    assert chat("it is 12345") == "An order number has 7 digits, like 4821377. Which order is it?"
    assert chat.last.events == (SlotRejected("order_number", "12345", "'12345' does not match '\\\\d{7}'"),)
    assert chat.state.tries == 1

    assert chat("order 4821377 please") == "Which item do you want to return?"
    assert chat.last.events[0] == SlotSet("order_number", "4821377", "answer") and chat.state.tries == 0

    # a correction of an earlier slot while another is asked
    assert chat("no, the order is 4821378") == "OK, I've changed that. What are you sending back?"  # rotated
    assert chat.last.events[0] == SlotSet("order_number", "4821378", "correction")

    assert chat("the boots") == "Why are you returning it?"
    assert chat.state.slots["item"] == "hiking boots"  # the list entity's canonical value

    # free text: the answer is the text, even when the classifier half-thinks it is the form's intent
    assert chat("they are too small", "returns", 0.6) == "Return the hiking boots from order 4821378, is that right?"
    assert chat.state.confirming and chat.names == ["SlotSet", "ConfirmationAsked"]

    assert chat("yes please") == "Done: the return of the hiking boots from order 4821378 is registered (they are too small)."
    assert chat.names == ["ConfirmationAnswered", "FormCompleted", "SlotCleared", "SlotCleared", "SlotCleared"]
    assert chat.state.form is None and dict(chat.state.slots) == {}


def test_entities_of_the_starting_turn_fill_the_form():
    chat = Chat()
    assert start(chat, "I want to return the tent from order 4821377") == "Why are you returning it?"
    assert dict(chat.state.slots) == {"order_number": "4821377", "item": "tent"}


def test_fill_rules_form_and_asked():
    chat = Chat()
    chat("is the tent waterproof?", "new_topic", 0.9)  # item fills only while a form needs it
    chat("where is order 4821377", "new_topic", 0.9)  # order_number fills always
    assert dict(chat.state.slots) == {"order_number": "4821377"}
    assert start(chat) == "Which item do you want to return?"
    # reason fills only as an answer: a product named now is an entity for item, the text is not a reason
    assert chat("tent") == "Why are you returning it?"
    assert "reason" not in chat.state.slots


def test_several_slots_in_one_answer_and_other_slot_before_the_asked_one():
    chat = Chat()
    start(chat)
    # asked for the order number, the user names the item first: kept, and no try lost
    assert chat("it's the tent") == "Which order is it?"
    assert chat.state.slots["item"] == "tent" and chat.state.tries == 0
    assert chat("4821377") == "Why are you returning it?"


def test_cancel_with_the_builtin_phrases_and_the_slots_are_cleared():
    chat = Chat()
    start(chat)
    chat("4821377")
    assert chat("never mind") == "OK, I've stopped that."
    assert chat.names == ["FormCancelled", "SlotCleared"]
    assert chat.state.form is None and dict(chat.state.slots) == {}
    start(chat)
    assert chat("stop") == "OK, I've stopped that."


def test_cancel_phrase_overridable_and_a_free_text_answer_starting_with_stop_is_an_answer():
    chat = Chat(shop(builtins={"cancel": {"intent": "abort_it", "examples": ["forget it", "halt"]}}))
    start(chat, "return the tent from 4821377")
    assert chat("stop") == "Return the tent from order 4821377, is that right?"  # "stop" is no cancel here
    chat = Chat(shop(builtins={"cancel": {"examples": ["forget it", "halt"]}}))
    start(chat, "return the tent from 4821377")
    assert chat("halt") == "OK, I've stopped that."
    chat = Chat()
    start(chat, "return the tent from 4821377")
    assert chat("stopped working after a week").startswith("Return the tent")
    assert chat.state.slots["reason"] == "stopped working after a week"


def test_cancel_by_a_trained_intent_needs_confidence():
    chat = Chat()
    start(chat, "return the tent from 4821377")
    chat("the zip broke", "cancel", 0.4)  # a low-confidence "cancel" is still the answer
    assert chat.state.slots["reason"] == "the zip broke"
    assert chat("please drop this", "cancel", 0.95) == "OK, I've stopped that."


def test_gives_up_after_max_tries():
    chat = Chat()
    start(chat)
    assert chat("I don't know it") == "An order number has 7 digits, like 4821377. Which order is it?"
    assert chat("no idea, sorry") == "Sorry, I can't find that order. You can start a return in 'My account'."
    assert chat.names == ["SlotRejected", "FormAbandoned"] and chat.state.form is None


def test_default_reask_repeats_the_question_rotated():
    chat = Chat()
    start(chat, "return order 4821377")
    assert chat("a lamp") == "Sorry, that doesn't look right. What are you sending back?"
    assert chat("a sleeping bag") == "Sorry, that doesn't look right. Which item do you want to return?"
    assert chat.last.events[0] == SlotRejected("item", "sleeping bag", "'sleeping bag' is not one of ['tent', 'hiking boots']")
    assert chat.state.tries == 2 and chat.state.asks["item"] == 3


def test_confirmation_denied():
    chat = Chat()
    start(chat, "return the tent from order 4821377")
    assert chat("it leaks") == "Return the tent from order 4821377, is that right?"
    assert chat("nope") == "OK, I won't register the return."
    assert chat.names[:2] == ["ConfirmationAnswered", "FormCancelled"]
    assert chat.last.events[0].affirmed is False and chat.state.form is None


def test_confirmation_corrected_asks_again_and_other_answers_ask_for_yes_or_no():
    chat = Chat()
    start(chat, "return the tent from order 4821377")
    chat("it leaks")
    assert chat("no, the order is 4821378") == "OK, I've changed that. Return the tent from order 4821378, is that right?"
    assert chat.state.confirming
    assert chat("hmm") == "Please answer yes or no. Return the tent from order 4821378, is that right?"
    assert chat("when are you open", "opening_hours", 0.9) == (
        "We're open 8:00-20:00. Return the tent from order 4821378, is that right?")
    assert chat("yes").startswith("Done: the return of the tent from order 4821378")


def test_form_without_confirmation_completes_and_keep_slots():
    data = shop()
    data["dialogue"]["forms"]["returns"] = {"slots": ["order_number", "item"], "keep_slots": True}
    chat = Chat(data)
    start(chat, "return order 4821377")
    assert chat("tent") == "Done: the return of the tent from order 4821377 is registered ({reason})."
    assert chat.names == ["SlotSet", "FormCompleted"] and dict(chat.state.slots) == {"order_number": "4821377", "item": "tent"}


def test_handoff_during_a_form_cancels_it_keeping_the_slots():
    chat = Chat()
    start(chat, "return order 4821377")
    assert chat("I want a human", "talk_to_human", 0.93) == "Handing you over."
    assert chat.names == ["FormCancelled", "HandedOff"] and chat.state.handed_off
    assert chat.state.slots["order_number"] == "4821377"


def test_number_and_boolean_slots_from_text():
    data = shop()
    data["dialogue"]["slots"].update({
        "count": {"type": "number", "from_text": True, "questions": ["How many?"]},
        "gift": {"type": "boolean", "from_text": True, "questions": ["Is it a gift?"]},
    })
    data["dialogue"]["forms"]["returns"] = {"slots": ["count", "gift"]}
    data["intents"]["returns"]["responses"] = ["{count} items, gift: {gift}."]
    chat = Chat(data)
    assert start(chat) == "How many?"
    assert chat("many") == "Sorry, that doesn't look right. How many?"
    assert chat("about 2.0 of them") == "Is it a gift?"
    assert chat("yes it is") == "2 items, gift: yes."


def test_bot_changed_under_the_conversation():
    chat = Chat()
    start(chat)
    data = shop()
    del data["dialogue"]["forms"]
    fresh = Chat(data)
    fresh.state, fresh.log = chat.state, chat.log
    assert fresh("when are you open", "opening_hours", 0.9) == "We're open 8:00-20:00."
    assert fresh.names == ["FormCancelled"] and fresh.state.form is None
