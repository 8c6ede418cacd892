import pytest

from botyard.models.definition import MIN_EXAMPLES, load_bot, parse_bot
from botyard.models.errors import DefinitionError


def good():
    return {
        "tenant": "acme",
        "bot": "faq",
        "fallback": {"threshold": 0.4, "response": "Sorry?"},
        "intents": {
            "greet": {"examples": ["hi", "hello"], "responses": ["Hello!"]},
            "bye": {"examples": ["bye", "see you"], "responses": ["Bye!"]},
        },
    }


def test_example_bot_is_realistic(example_bot):
    assert example_bot.key == "acme-shop/support"
    assert len(example_bot.intents) >= 8
    assert all(len(i.examples) >= 15 and i.responses for i in example_bot.intents)
    assert example_bot.fallback.threshold is None  # calibrated at training time
    kinds = {e.name: e.type for e in example_bot.entities}
    assert kinds == {"country": "learned", "product": "list", "order_number": "regex"}
    assert len(example_bot.out_of_scope) >= 10


def test_parse_good_bot_and_hash_is_stable():
    a, b = parse_bot(good()), parse_bot(good())
    assert a.intent("greet").responses == ("Hello!",)
    assert a.content_hash() == b.content_hash()
    assert a.fallback.threshold == 0.4


def mutate(fn):
    data = good()
    fn(data)
    return data


@pytest.mark.parametrize(
    "change, field, words",
    [
        (lambda d: d.pop("tenant"), "tenant", "required"),
        (lambda d: d.update(bot="has space"), "bot", "letters"),
        (lambda d: d.update(intnets={}), "intnets", "unknown key"),
        (lambda d: d["intents"].pop("bye"), "intents", "at least 2"),
        (lambda d: d["intents"]["greet"].update(examples=[]), "intents.greet.examples", f"at least {MIN_EXAMPLES}"),
        (lambda d: d["intents"]["greet"].update(examples=["hi", 3]), "intents.greet.examples[1]", "non-empty string"),
        (lambda d: d["intents"]["bye"]["examples"].append("Hello"), "intents.bye.examples[2]", "also an example of intent 'greet'"),
        (lambda d: d["intents"]["greet"].update(responses=[]), "intents.greet.responses", "at least one"),
        (lambda d: d["fallback"].update(threshold=1.5), "fallback.threshold", "between 0 and 1"),
        (lambda d: d["intents"].update({"9bad": {"examples": ["a", "b"], "responses": ["c"]}}), "intents.9bad", "identifiers"),
        (lambda d: d["intents"]["greet"]["examples"].append("hi [Ann](person)"), "intents.greet.examples[2]",
         "entity 'person' is used but not defined"),
        (lambda d: d["intents"]["greet"]["examples"].append("hi [Ann](person"), "intents.greet.examples[2]", "malformed"),
        (lambda d: d.update(entities={"phone": {"type": "regex", "pattern": "(\\d+"}}), "entities.phone.pattern",
         "does not compile"),
        (lambda d: d.update(entities={"phone": {"type": "regex", "pattern": "\\d*"}}), "entities.phone.pattern",
         "empty string"),
        (lambda d: d.update(entities={"size": {"type": "list"}}), "entities.size.values", "required"),
        (lambda d: d.update(entities={"size": "guessed"}), "entities.size.type", "one of"),
        (lambda d: d.update(entities={"size": {"type": "learned", "pattern": "x"}}), "entities.size.pattern", "unknown key"),
        (lambda d: d.update(out_of_scope=["bye"]), "out_of_scope[0]", "also an example of intent 'bye'"),
        (lambda d: d["intents"].update(out_of_scope={"examples": ["a", "b"], "responses": ["c"]}),
         "intents.out_of_scope", "reserved"),
    ],
)
def test_validation_names_field_and_problem(change, field, words):
    with pytest.raises(DefinitionError) as info:
        parse_bot(mutate(change), source="bots/faq.yml")
    err = info.value
    assert err.source == "bots/faq.yml" and err.field == field and words in err.problem
    assert str(err).startswith(f"bots/faq.yml: {field}: ")


def test_load_bot_reports_file_problems(tmp_path):
    missing = tmp_path / "nope.yml"
    with pytest.raises(DefinitionError, match="cannot read"):
        load_bot(missing)
    broken = tmp_path / "broken.yml"
    broken.write_text("tenant: [unclosed")
    with pytest.raises(DefinitionError, match="not valid YAML") as info:
        load_bot(broken)
    assert info.value.source == str(broken)


def test_entities_and_out_of_scope_parse_and_round_trip():
    data = good()
    data["entities"] = {
        "person": "learned",
        "size": {"type": "list", "values": {"large": ["big", "xl"], "small": []}},
        "phone": {"type": "regex", "pattern": "\\d{6,}"},
    }
    data["intents"]["greet"]["examples"].append("hi, I am [Ann](person)")
    data["out_of_scope"] = ["what's the weather"]
    bot = parse_bot(data)
    assert bot.entity("size").values == (("large", ("big", "xl")), ("small", ()))
    assert bot.entity("phone").pattern == "\\d{6,}"
    assert type(bot).from_dict(bot.to_dict()) == bot
