"""The dialogue section of a bot file: parsed into frozen dataclasses, every problem reported
at once with its field, old bot files unchanged."""

import copy
import importlib
import re

import pytest
import yaml

from botyard.dialogue.errors import DialogueDefinitionError
from botyard.dialogue.spec import DialogueSpec, load, parse_dialogue, parse_spec
from botyard.models.definition import BotDefinition, parse_bot
from botyard.models.errors import DefinitionError
from tests.conftest import OLD_EXAMPLE_BOT

from .shop import SHOP, shop


def problems(data):
    with pytest.raises(DialogueDefinitionError) as info:
        parse_spec(data, source="shop.yml")
    return info.value


def test_shop_parses():
    definition, spec = parse_spec(copy.deepcopy(SHOP))
    assert spec.slot("order_number").regex == r"\d{7}" and spec.slot("item").values == ("tent", "hiking boots")
    assert spec.slot("reason").from_text and spec.slot("reason").fill == "asked"
    assert spec.form("returns").slots == ("order_number", "item", "reason")
    assert spec.escalation.after == 2 and spec.escalation.handoff
    assert spec.handoff.intents == ("talk_to_human",)
    assert spec.rules[0].set == (("vip", True),) and spec.rules[1].clear == ("delivery_country", "vip")
    assert [r.when.text for r in spec.conditional("shipping_costs")] == [
        "delivery_country == Belgium", "vip and delivery_country in [Germany, Austria]"]
    assert hash(spec) is not None and parse_spec(copy.deepcopy(SHOP))[1] == spec
    # the definition keeps the section as written, and round-trips through a snapshot's dict
    assert BotDefinition.from_dict(definition.to_dict()) == definition
    assert parse_dialogue(BotDefinition.from_dict(definition.to_dict())) == spec
    assert hash(definition) is not None


def test_a_bot_file_with_a_dialogue_section_loads(tmp_path):
    path = tmp_path / "shop.yml"
    path.write_text(yaml.safe_dump(SHOP))
    definition, spec = load(path)
    assert definition.key == "acme-shop/support" and spec.form("returns") is not None


def test_old_bot_files_unchanged(old_example_bot):
    example_bot = old_example_bot
    assert example_bot.dialogue is None and "dialogue" not in example_bot.to_dict()
    assert parse_dialogue(example_bot) == DialogueSpec()
    data = yaml.safe_load(OLD_EXAMPLE_BOT.read_text())
    assert parse_bot(data) == example_bot
    with_section = parse_bot({**data, "dialogue": {}})
    assert with_section.content_hash() != example_bot.content_hash()  # a section, even empty, counts
    assert parse_dialogue(with_section) == DialogueSpec()


def test_every_problem_is_reported_at_once():
    data = shop()
    d = data["dialogue"]
    d["slots"]["size"] = {"type": "categorical", "questions": ["Which size?"]}  # no values
    d["slots"]["code"] = {"regex": "(\\d+", "questions": ["Code?"]}  # bad regex, and no entity nor from_text
    d["forms"]["returns"]["slots"] = ["order_number", "colour", "code"]  # unknown slot; a slot that can never be filled
    d["forms"]["returns"]["confirm"] = "Return {item} for {customer}?"  # a placeholder naming nothing
    d["responses"]["shipping_costs"][0]["when"] = "delivery_country == Narnia"
    d["rules"].append({"intent": "checkout", "set": {"vip": "perhaps"}})
    err = problems(data)
    found = dict(err.problems)
    assert found == {
        "dialogue.slots.size.values": "a categorical slot needs its list of values",
        "dialogue.slots.code.regex": found["dialogue.slots.code.regex"],
        "dialogue.forms.returns.slots[1]": "slot 'colour' is not defined under 'dialogue.slots'",
        "dialogue.forms.returns.slots[2]": "slot 'code' has no entity and is not from_text: the form can never complete",
        "dialogue.forms.returns.confirm": "placeholder {customer} names neither an entity nor a slot",
        "dialogue.responses.shipping_costs[0].when": found["dialogue.responses.shipping_costs[0].when"],
        "dialogue.rules[2].intent": "intent 'checkout' is not defined under 'intents'",
        "dialogue.rules[2].set.vip": "'perhaps' is not yes or no",
    }
    assert found["dialogue.slots.code.regex"].startswith("does not compile")
    assert "can never be 'Narnia'" in found["dialogue.responses.shipping_costs[0].when"]
    assert str(err).startswith("shop.yml: 8 problems\nshop.yml: dialogue.slots.size.values: ")
    assert isinstance(err, DefinitionError) and err.code == "invalid_definition"
    assert err.field == "dialogue.slots.size.values" and err.source == "shop.yml"
    assert len(err.to_wire()["problems"]) == 8


@pytest.mark.parametrize(
    "change, field, words",
    [
        (lambda d: d.update(slotz={}), "dialogue.slotz", "unknown key"),
        (lambda d: d["slots"]["item"].update(type="colour"), "dialogue.slots.item.type", "must be one of"),
        (lambda d: d["slots"]["item"].update(entity="size"), "dialogue.slots.item.entity", "not defined under 'entities'"),
        (lambda d: d["slots"]["item"].update(values=["lamp"]), "dialogue.slots.item.entity", "can never be filled"),
        (lambda d: d["slots"]["vip"].update(values=["a"]), "dialogue.slots.vip.values", "only categorical and list"),
        (lambda d: d["slots"]["item"].update(fill="sometimes"), "dialogue.slots.item.fill", "must be one of"),
        (lambda d: d["slots"]["item"].update(max_tries=0), "dialogue.slots.item.max_tries", "at least 1"),
        (lambda d: d["slots"]["item"].update(questions=[]), "dialogue.forms.returns.slots[1]", "no questions"),
        (lambda d: d["slots"]["item"].update(reask="No {size}."), "dialogue.slots.item.reask", "placeholder {size}"),
        (lambda d: d["slots"].update({"9x": {}}), "dialogue.slots.9x", "identifiers"),
        (lambda d: d["slots"].update(tags={"type": "list", "from_text": True}), "dialogue.slots.tags.from_text", "entities only"),
        (lambda d: d["forms"].update(checkout={"slots": ["item"]}), "dialogue.forms.checkout", "not defined under 'intents'"),
        (lambda d: d["forms"]["returns"].update(slots=["item", "item"]), "dialogue.forms.returns.slots[1]", "listed twice"),
        (lambda d: d["forms"]["returns"].update(slots=[]), "dialogue.forms.returns.slots", "non-empty list"),
        (lambda d: d["forms"].update(talk_to_human={"slots": ["item"]}), "dialogue.forms.talk_to_human", "also hands off"),
        (lambda d: d["responses"]["shipping_costs"].append({"text": "x"}), "dialogue.responses.shipping_costs[2]", "'when'"),
        (lambda d: d["responses"]["shipping_costs"][0].update(when="colour == red"),
         "dialogue.responses.shipping_costs[0].when", "slot 'colour' is not defined"),
        (lambda d: d["responses"]["shipping_costs"][0].update(when="item > 3"),
         "dialogue.responses.shipping_costs[0].when", "compares numbers"),
        (lambda d: d["rules"].append({"intent": "greeting"}), "dialogue.rules[2]", "'set', 'clear' and/or 'action'"),
        (lambda d: d["rules"].append({"intent": "greeting", "clear": ["colour"]}), "dialogue.rules[2].clear", "'colour'"),
        (lambda d: d.update(escalation={"after": 0, "response": "x"}), "dialogue.escalation.after", "at least 1"),
        (lambda d: d.update(escalation={"after": 2}), "dialogue.escalation.response", "required"),
        (lambda d: d.update(handoff={"intents": ["agent"]}), "dialogue.handoff.intents[0]", "'agent' is not defined"),
        (lambda d: d.update(builtins={"maybe": {}}), "dialogue.builtins.maybe", "unknown built-in"),
        (lambda d: d.update(builtins={"affirm": {"examples": []}}), "dialogue.builtins.affirm.examples", "non-empty"),
        (lambda d: d.update(messages={"cancelled": ""}), "dialogue.messages.cancelled", "non-empty"),
        (lambda d: d.update(messages={"bye": "x"}), "dialogue.messages.bye", "unknown message"),
        (lambda d: d.update(digression_confidence=2), "dialogue.digression_confidence", "between 0 and 1"),
    ],
)
def test_each_problem_names_its_field(change, field, words):
    data = shop()
    change(data["dialogue"])
    err = problems(data)
    assert len(err.problems) == 1, err.problems
    assert err.field == field and words in err.problem, err.problems


def test_intent_responses_placeholders_are_checked_too():
    data = shop()
    data["intents"]["greeting"]["responses"] = ["Hello {name}!"]
    assert problems(data).problems == (("intents.greeting.responses[0]", "placeholder {name} names neither an entity nor a slot"),)


@pytest.mark.parametrize("dialogue, field", [(["slots"], "dialogue"), ({"slots": {1: {}}}, "dialogue.slots.1"),
                                             ({"when": __import__("datetime").date(2024, 1, 1)}, "dialogue.when")])
def test_definition_accepts_only_a_plain_mapping(dialogue, field):
    data = shop()
    data["dialogue"] = dialogue
    with pytest.raises(DefinitionError) as info:
        parse_bot(data)
    assert info.value.field == field


@pytest.mark.parametrize("module", ["spec", "slots", "builtins", "rules", "handoff"])
def test_the_documented_examples_parse_with_the_example_bot(module):
    doc = importlib.import_module(f"botyard.dialogue.{module}").__doc__
    section = yaml.safe_load(re.search(r"```yaml\n(.*?)```", doc, re.S).group(1))["dialogue"]
    _, spec = parse_spec({**yaml.safe_load(OLD_EXAMPLE_BOT.read_text()), "dialogue": section})
    assert spec != DialogueSpec()


def test_bare_yes_and_on_are_explained():
    data = shop(builtins={"affirm": {"examples": [True, "yep"]}})
    assert "quote it" in problems(data).problem
    data = shop()
    data["dialogue"]["rules"] = [{True: "greeting", "clear": ["vip"]}]  # what YAML makes of `on: greeting`
    with pytest.raises(DefinitionError, match="YAML reads a bare yes, no, on or off"):
        parse_bot(data)
