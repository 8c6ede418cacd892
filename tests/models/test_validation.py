r"""Validation of bot files: every problem at once, warnings where the intent is clear, literal
brackets (``\[`` ``\]``), suggested names."""

from pathlib import Path

import pytest
import yaml

from botyard.dialogue.errors import DialogueDefinitionError
from botyard.dialogue.spec import parse_dialogue
from botyard.models.definition import BotDefinition, inspect_bot, parse_bot
from botyard.models.errors import DefinitionError
from botyard.models.names import IDENTIFIER_RE, suggest_identifier, suggest_token
from botyard.models.overlap import similar_pairs
from botyard.models.text import parse_annotated, tokenize
from botyard.training.dataset import from_definition

PLANTED = Path(__file__).resolve().parents[1] / "data" / "ten-problems.yml"
PLANTED_FIELDS = [  # in the order they are reported; the last is the dialogue section's
    "descripton", "bot", "fallback.threshold", "entities.order_number.pattern", "intents.greet.examples[3]",
    "intents.100_NIGHT_TRIAL_OFFER", "intents.order_status.examples[2]", "intents.track_order.examples[1]",
    "intents.track_order.responses", "dialogue.forms.order_status.slots[0]",
]


def bot(**intents) -> dict:
    return {
        "tenant": "acme",
        "bot": "faq",
        "intents": {
            "greet": {"examples": ["hi", "hello", "good morning"], "responses": ["Hello!"]},
            "bye": {"examples": ["bye", "see you", "good night"], "responses": ["Bye!"]},
            **intents,
        },
    }


def test_one_parse_reports_every_problem_of_the_bot_section():
    data = yaml.safe_load(PLANTED.read_text())
    with pytest.raises(DefinitionError) as info:
        parse_bot(data, source="ten.yml")
    err = info.value
    assert [f for f, _ in err.problems] == PLANTED_FIELDS[:-1]
    assert (err.field, err.problem) == err.problems[0]  # the first, as before
    assert err.code == "invalid_definition"
    assert str(err).splitlines()[0] == "ten.yml: 9 problems"
    assert [p["field"] for p in err.to_wire()["problems"]] == PLANTED_FIELDS[:-1]


def test_the_partial_definition_lets_the_dialogue_section_be_checked_in_the_same_run():
    definition, problems = inspect_bot(yaml.safe_load(PLANTED.read_text()), source="ten.yml")
    assert definition is not None and len(problems.errors) == 9
    with pytest.raises(DialogueDefinitionError) as info:
        parse_dialogue(definition, source="ten.yml")
    assert [f for f, _ in info.value.problems] == PLANTED_FIELDS[-1:]  # no echo of the bot section's problems
    assert {f for f, _ in problems.warnings} == {
        "intents.greet.examples[2]", "intents.goodbye.examples", "intents.track_order",
    }


def test_a_repeated_example_is_dropped_with_a_warning_and_the_first_kept():
    data = bot()
    data["intents"]["greet"]["examples"] = ["hi", "Hello", "hi", "  hello ", "[Ann](name) hi", "hey"]
    data["entities"] = {"name": "learned"}
    data["out_of_scope"] = ["tell me a joke", "Tell me a joke"]
    parsed = parse_bot(data)
    assert parsed.intent("greet").examples == ("hi", "Hello", "[Ann](name) hi", "hey")
    assert parsed.out_of_scope == ("tell me a joke",)
    assert [f for f, _ in parsed.warnings] == ["intents.greet.examples[2]", "intents.greet.examples[3]", "out_of_scope[1]"]
    assert "duplicate example 'hi' (as intents.greet.examples[0]): dropped" in parsed.warnings[0][1]


def test_the_same_utterance_under_two_intents_is_still_refused_naming_both():
    data = bot()
    data["intents"]["bye"]["examples"].append("Hi")
    with pytest.raises(DefinitionError) as info:
        parse_bot(data)
    assert info.value.field == "intents.bye.examples[3]"
    assert "also an example of intent 'greet' (intents.greet.examples[0])" in info.value.problem


def test_a_one_example_intent_is_accepted_with_a_warning():
    parsed = parse_bot(bot(thanks={"examples": ["thank you"], "responses": ["You're welcome!"]}))
    assert parsed.intent("thanks").examples == ("thank you",)
    assert [(f, w.split(":")[0]) for f, w in parsed.warnings] == [("intents.thanks.examples", "only 1 example")]
    dataset = from_definition(parsed)  # and it trains: the label is there, its one example too
    assert sum(e.intent == "thanks" for e in dataset.examples) == 1


def test_heavily_overlapping_intents_are_warned_about():
    data = bot(
        order_status={"examples": ["where is my order", "has my parcel shipped", "when will my order arrive"], "responses": ["a"]},
        track_order={"examples": ["where is my order now", "track my package", "when will my order arrive please"],
                     "responses": ["b"]},
    )
    data["out_of_scope"] = ["see you later alligator", "what is the weather"]
    parsed = parse_bot(data)
    found = dict(parsed.warnings)
    assert set(found) == {"intents.order_status"}  # two of three: once per pair, on the first on a tie
    assert found["intents.order_status"].startswith("2 of its 3 examples are nearly the same as examples of intent 'track_order'")
    assert "'where is my order' ~ 'where is my order now'" in found["intents.order_status"]
    data["out_of_scope"] = ["where is my order today", "has my parcel shipped yet", "what is the weather"]
    found = dict(parse_bot(data).warnings)
    assert "nearly the same as the out-of-scope examples" in found["intents.order_status"]


def test_similar_pairs_finds_exactly_the_pairs_a_full_comparison_finds():
    words = "a b c d e f g h i j".split()
    sets = [frozenset(words[i : i + n]) for n in range(1, 6) for i in range(0, 10 - n)]
    sets += [frozenset(words[::2]), frozenset(words[1::2]), frozenset(words[:5])]
    for t in (0.5, 0.8, 1.0):
        full = {(i, j) for i in range(len(sets)) for j in range(i + 1, len(sets))
                if len(sets[i] & sets[j]) / len(sets[i] | sets[j]) >= t}
        assert {tuple(sorted(p)) for p in similar_pairs(sets, t)} == full


def test_warnings_are_not_part_of_the_definition():
    data = bot()
    clean = parse_bot(data)
    data["intents"]["greet"]["examples"].append("hi")
    warned = parse_bot(data)
    assert warned.warnings and not clean.warnings
    assert warned == clean and warned.content_hash() == clean.content_hash()
    assert "warnings" not in warned.to_dict()
    assert BotDefinition.from_dict(warned.to_dict()) == warned


def test_existing_files_keep_their_content_hash(example_bot):
    # The hashed mapping has the keys it had before warnings existed, so snapshot ids do not move.
    assert set(example_bot.to_dict()) == {"tenant", "bot", "description", "fallback", "entities", "intents", "out_of_scope",
                                          "dialogue"}
    assert example_bot.warnings == ()


def test_literal_brackets_are_escaped_and_entity_offsets_count_the_unescaped_text():
    text, spans = parse_annotated(r"what does \[beta\] mean on [model \[X\]](product) for [Ann](person)")
    assert text == "what does [beta] mean on model [X] for Ann"
    assert [(s.entity, text[s.start : s.end]) for s in spans] == [("product", "model [X]"), ("person", "Ann")]
    assert parse_annotated(r"a backslash \d stays")[0] == r"a backslash \d stays"


def test_escaped_brackets_round_trip_through_the_bot_file_into_training_data():
    data = bot()
    data["entities"] = {"product": "learned"}
    data["intents"]["ask"] = {
        "examples": [r"what does \[beta\] mean", r"is [model \[X\]](product) in stock", r"what is \[ this"],
        "responses": ["..."],
    }
    data["out_of_scope"] = [r"print \[1, 2\]"]
    parsed = parse_bot(yaml.safe_load(yaml.safe_dump(data)))  # as written in a file
    assert not parsed.warnings
    examples = {" ".join(e.tokens): e.tags for e in from_definition(parsed).examples}
    assert examples["what does [ beta ] mean"] == ("O",) * 6
    assert examples["is model [ X ] in stock"] == ("O", "B-product", "I-product", "I-product", "I-product", "O", "O")
    assert "print [ 1 , 2 ]" in examples
    assert [t.text for t in tokenize(parse_annotated(r"is [model \[X\]](product)")[0])] == ["is", "model", "[", "X", "]"]


def test_an_unescaped_bracket_pair_is_refused_with_the_escape_named():
    data = bot()
    data["intents"]["greet"]["examples"].append("what does [beta] mean")
    with pytest.raises(DefinitionError) as info:
        parse_bot(data)
    assert info.value.field == "intents.greet.examples[3]"
    assert r"\[ \] for literal brackets" in info.value.problem


@pytest.mark.parametrize(
    "name, kind, taken, suggested",
    [
        ("100_NIGHT_TRIAL_OFFER", "intent", (), "intent_100_NIGHT_TRIAL_OFFER"),
        ("order-status", "intent", (), "order_status"),
        ("order status?", "intent", ("order_status",), "order_status_2"),
        ("Crème brûlée", "entity", (), "Creme_brulee"),
        (2024, "slot", (), "slot_2024"),
        ("x" * 70, "intent", (), "x" * 64),
        ("???", "intent", (), None),
    ],
)
def test_a_suggested_name_is_valid_and_near(name, kind, taken, suggested):
    got = suggest_identifier(name, kind, taken)
    assert got == suggested
    assert got is None or IDENTIFIER_RE.match(got)


def test_refused_names_come_with_a_suggestion_that_parses():
    data = bot(**{"100_NIGHT_TRIAL_OFFER": {"examples": ["the trial", "100 nights"], "responses": ["yes"]}})
    data["bot"] = "night support"
    data["entities"] = {"order-number": {"type": "regex", "pattern": r"\d{6}"}}
    data["dialogue"] = {"slots": {"order number": {"entity": "order_number"}}}
    with pytest.raises(DefinitionError) as info:
        parse_bot(data)
    found = dict(info.value.problems)
    assert found["bot"].endswith("use 'night-support'?")
    assert found["intents.100_NIGHT_TRIAL_OFFER"].endswith("use 'intent_100_NIGHT_TRIAL_OFFER'?")
    assert found["entities.order-number"].endswith("use 'order_number'?")
    data["bot"] = suggest_token("night support")
    data["intents"]["intent_100_NIGHT_TRIAL_OFFER"] = data["intents"].pop("100_NIGHT_TRIAL_OFFER")
    data["entities"] = {"order_number": data["entities"]["order-number"]}
    with pytest.raises(DialogueDefinitionError) as info:
        parse_dialogue(parse_bot(data))
    assert info.value.problems == (
        ("dialogue.slots.order number", "slot names are identifiers: a letter, then letters, digits or '_' (at most 64); "
                                        "use 'order_number'?"),
    )


def test_a_misspelt_key_gets_a_guess():
    data = bot()
    data["intents"]["greet"]["respones"] = data["intents"]["greet"].pop("responses")
    with pytest.raises(DefinitionError) as info:
        parse_bot(data)
    found = dict(info.value.problems)
    assert "(did you mean 'responses'?)" in found["intents.greet.respones"]
    assert found["intents.greet.responses"] == "needs at least one response"


def test_every_bad_entity_is_reported_and_the_good_ones_still_parse():
    data = bot()
    data["entities"] = {
        "a": {"type": "regex", "pattern": "("}, "b": "learned", "c": {"type": "list"}, "9d": "learned",
        "e": {"type": "list", "values": ["x", "y"]},
    }
    definition, problems = inspect_bot(data)
    assert [f for f, _ in problems.errors] == ["entities.9d", "entities.a.pattern", "entities.c.values"]
    assert [e.name for e in definition.entities][:2] == ["b", "e"]  # the rest stand in by name
