r"""A small shop bot with a "return an order" form, and a scripted chat that checks, after
every turn, that replaying the committed events from the empty state gives the engine's state."""

from __future__ import annotations

import copy
import re

from botyard.dialogue.engine import Responses, Understanding, step
from botyard.dialogue.spec import parse_spec
from botyard.dialogue.state import DialogueState, from_dict, replay, to_dict

SHOP = {
    "tenant": "acme-shop",
    "bot": "support",
    "fallback": {"response": "Sorry, I didn't get that."},
    "entities": {
        "order_number": {"type": "regex", "pattern": r"(?<!\d)\d{5,8}(?!\d)"},
        "product": {"type": "list", "values": {"tent": ["tents"], "hiking boots": ["boots"], "sleeping bag": []}},
        "country": "learned",
    },
    "intents": {
        "greeting": {"examples": ["hi", "hello"], "responses": ["Hello! How can I help?"]},
        "returns": {"examples": ["I want to return something", "return order [4821377](order_number)"],
                    "responses": ["Done: the return of the {item} from order {order_number} is registered ({reason})."]},
        "opening_hours": {"examples": ["when are you open", "opening hours"], "responses": ["We're open 8:00-20:00."]},
        "shipping_costs": {"examples": ["how much is shipping", "shipping to [Belgium](country)"],
                           "responses": ["Shipping to {country} is 4.95 EUR.", "Shipping is 4.95 EUR."]},
        "talk_to_human": {"examples": ["human please", "let me talk to a person"], "responses": ["Handing you over."]},
        "new_topic": {"examples": ["something else", "another question"], "responses": ["Sure, go ahead."]},
    },
    "dialogue": {
        "slots": {
            "order_number": {
                "entity": "order_number", "regex": r"\d{7}",
                "questions": ["What's your order number?", "Which order is it?"],
                "reask": "An order number has 7 digits, like 4821377. Which order is it?",
                "max_tries": 2,
            },
            "item": {"type": "categorical", "values": ["tent", "hiking boots"], "entity": "product", "fill": "form",
                     "questions": ["Which item do you want to return?", "What are you sending back?"]},
            "reason": {"from_text": True, "fill": "asked", "questions": ["Why are you returning it?"]},
            "delivery_country": {"type": "categorical", "values": ["Belgium", "Germany", "Austria"], "entity": "country"},
            "vip": {"type": "boolean"},
        },
        "forms": {
            "returns": {
                "slots": ["order_number", "item", "reason"],
                "confirm": "Return the {item} from order {order_number}, is that right?",
                "give_up": "Sorry, I can't find that order. You can start a return in 'My account'.",
                "denied": "OK, I won't register the return.",
            },
        },
        "responses": {
            "shipping_costs": [
                {"when": "delivery_country == Belgium", "text": "Shipping to Belgium is free over 30 EUR."},
                {"when": "vip and delivery_country in [Germany, Austria]", "text": "Shipping is free for you, {country}."},
            ],
        },
        "rules": [
            {"intent": "greeting", "when": "order_number", "set": {"vip": True}},
            {"intent": "new_topic", "clear": ["delivery_country", "vip"]},
        ],
        "escalation": {"after": 2, "response": "I'm not getting it, sorry. Let me find a colleague.", "handoff": True},
        "handoff": {"intents": ["talk_to_human"], "back": "You're back with the bot."},
    },
}


def shop(**dialogue):
    """The shop bot, its dialogue section updated with ``dialogue``."""
    data = copy.deepcopy(SHOP)
    data["dialogue"].update(dialogue)
    return data


REGEX = re.compile(SHOP["entities"]["order_number"]["pattern"])
PRODUCTS = {"tent": "tent", "tents": "tent", "boots": "hiking boots", "hiking boots": "hiking boots", "sleeping bag": "sleeping bag"}


def entities(text: str, countries=()):
    """The entities the bot's matchers (and, for countries, the model) would find."""
    found = [{"entity": "order_number", "value": m.group(), "start": m.start(), "end": m.end()} for m in REGEX.finditer(text)]
    for phrase in sorted(PRODUCTS, key=len, reverse=True):
        if (i := text.lower().find(phrase)) >= 0 and not any(e["start"] <= i < e["end"] for e in found):
            found.append({"entity": "product", "value": PRODUCTS[phrase], "start": i, "end": i + len(phrase)})
    for country in countries:
        i = text.find(country)
        found.append({"entity": "country", "value": country, "start": i, "end": i + len(country)})
    return found


def said(text: str, intent: str = "new_topic", confidence: float = 0.3, fallback: bool = False, countries=()) -> Understanding:
    return Understanding(intent, confidence, tuple(entities(text, countries)), text, fallback)


class Chat:
    """Turns through the engine; after each, the state replayed from the empty state (through
    to_dict/from_dict, as the events will be stored) must be the engine's."""

    def __init__(self, data=None):
        self.definition, self.spec = parse_spec(data or shop(), source="shop.yml")
        self.responses = Responses.of(self.definition)
        self.state = DialogueState()
        self.log: list = []
        self.number = 0

    def __call__(self, text: str, intent: str = "new_topic", confidence: float = 0.3, **kw):
        self.number += 1
        out = step(self.spec, self.responses, self.state, said(text, intent, confidence, **kw), self.number)
        assert replay(out.events, self.state) == out.state
        self.log.extend(to_dict(e) for e in out.events)
        assert replay(from_dict(d) for d in self.log) == out.state
        self.state, self.last = out.state, out
        return out.reply_text

    @property
    def names(self):
        return [e.name for e in self.last.events]
