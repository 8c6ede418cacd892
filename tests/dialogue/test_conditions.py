import pytest

from botyard.dialogue.conditions import holds, parse_condition
from botyard.dialogue.slots import Slot

SLOTS = {s.name: s for s in [
    Slot("country", "categorical", ("Belgium", "United Kingdom", "Germany")),
    Slot("total", "number"),
    Slot("vip", "boolean"),
    Slot("items", "list", ("tent", "sleeping bag")),
    Slot("note"),
]}


@pytest.mark.parametrize("text, slots, expected", [
    ("country == Belgium", {"country": "Belgium"}, True),
    ("country == belgium", {"country": "Belgium"}, True),
    ("country != Belgium", {"country": "Germany"}, True),
    ("country != Belgium", {}, False),  # a test of an unset slot is false...
    ("not country == Belgium", {}, True),  # ...except its negation
    ("country == 'United Kingdom'", {"country": "United Kingdom"}, True),
    ("country == United Kingdom and total >= 50", {"country": "United Kingdom", "total": 50}, True),
    ("total > 50 or vip", {"total": 20, "vip": True}, True),
    ("total > 50 or vip", {"total": 20, "vip": False}, False),
    ("total < 10.5", {"total": 10}, True),
    ("vip == yes", {"vip": True}, True),
    ("country in [Belgium, Germany]", {"country": "Germany"}, True),
    ("country not in [Belgium, Germany]", {"country": "Germany"}, False),
    ("items contains 'sleeping bag'", {"items": ("tent", "sleeping bag")}, True),
    ("not items contains tent", {"items": ("sleeping bag",)}, True),
    ("note", {"note": "hi"}, True),
    ("note", {}, False),
    ("not vip", {"vip": False}, True),
    ("note == HELLO there", {"note": "hello  there"}, True),
])
def test_holds(text, slots, expected):
    assert holds(parse_condition(text, SLOTS), slots) is expected


@pytest.mark.parametrize("text, words", [
    ("", "non-empty"),
    ("colour == red", "slot 'colour' is not defined"),
    ("country == Narnia", "can never be 'Narnia'"),
    ("country > 3", "compares numbers"),
    ("total == many", "can never be 'many'"),
    ("items == tent", "list slot"),
    ("items in [tent]", "list slot"),
    ("country contains x", "'contains' is for list slots"),
    ("country ~ x", "expected an operator"),
    ("country == 'Belgium", "cannot read"),
    ("country in Belgium", "takes a list"),
    ("country in [Belgium", "expected ',' or ']'"),
    ("country ==", "value is missing"),
    ("total >= 3 and", "a test needs a slot name"),
    ("total >= 3 3", "can never be '3 3'"),
    ("country is Belgium", "expected an operator"),
])
def test_parse_errors(text, words):
    with pytest.raises(ValueError) as info:
        parse_condition(text, SLOTS)
    assert words in str(info.value)
