"""System entities: numbers, ordinals, money, dates, times and durations, on real phrasings
(tests/data/system-entities.yml, resolved against a fixed time and time zone), declared in
bot files, served by the runtime and filling slots."""

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from botyard.dialogue.engine import Responses, Understanding, step
from botyard.dialogue.spec import parse_spec
from botyard.dialogue.state import DialogueState
from botyard.models.definition import BotDefinition, parse_bot
from botyard.models.entities import Matchers
from botyard.models.errors import DefinitionError
from botyard.models.system.kinds import KINDS

TABLE = yaml.safe_load((Path(__file__).resolve().parent.parent / "data" / "system-entities.yml").read_text())
NOW = datetime.fromisoformat(TABLE["now"]).timestamp()
ZONE = TABLE["timezone"]


def bot(entities: dict, **top) -> dict:
    return {
        "tenant": "acme", "bot": "delivery", "entities": entities, **top,
        "intents": {"book": {"examples": ["book a delivery", "deliver it"], "responses": ["Booked."]},
                    "greet": {"examples": ["hello", "hi"], "responses": ["Hi!"]}},
    }


def matchers(*kinds: str, zone: str = ZONE) -> Matchers:
    """The runtime's entity path for a bot declaring ``kinds`` (each as an entity of its name)."""
    definition = parse_bot(bot({k: {"type": "system", "kind": k} for k in kinds}, timezone=zone))
    return Matchers(definition.entities, language=definition.language, timezone=definition.timezone)


ONE_KIND = {kind: matchers(kind) for kind in KINDS}
EVERY_KIND = matchers(*KINDS)


def test_the_table_has_sixty_phrasings_and_every_kind():
    assert len(TABLE["phrasings"]) >= 60
    assert {row[0] for row in TABLE["phrasings"]} == set(KINDS)


@pytest.mark.parametrize("kind, text, value, span", TABLE["phrasings"], ids=lambda v: str(v))
def test_phrasing(kind, text, value, span):
    found = ONE_KIND[kind].find(text, NOW)
    assert found, f"nothing found in {text!r}"
    first = found[0]
    assert (first.entity, first.value, text[first.start : first.end]) == (kind, value, span)
    assert type(first.value) is type(value) and first.extractor == "system" and first.confidence == 1.0
    json.dumps(first.to_dict())  # JSON-safe: it goes into replies and events


@pytest.mark.parametrize("text", TABLE["none"])
def test_ordinary_utterances_have_none(text):
    assert EVERY_KIND.find(text, NOW) == []


def test_a_number_inside_a_longer_entity_gives_way_to_it():
    text = "I paid 30 euros for 2 tents, delivered in 3 days at 3pm"
    found = [(e.entity, e.value, text[e.start : e.end]) for e in EVERY_KIND.find(text, NOW)]
    assert found == [("money", "30 EUR", "30 euros"), ("number", 2, "2"), ("date", "2026-12-12", "in 3 days"),
                     ("time", "15:00", "3pm")]
    # a bot without money and dates gets the numbers and the duration (whose 3 is not a number)
    found = [(e.entity, e.value) for e in matchers("number", "duration").find(text, NOW)]
    assert found == [("number", 30), ("number", 2), ("duration", 259200)]


def test_relative_dates_and_times_resolve_in_the_bot_time_zone():
    late = datetime.fromisoformat("2026-12-09T23:30:00+00:00").timestamp()  # already the 10th in Brussels
    brussels, utc = matchers("date", "time"), matchers("date", "time", zone="UTC")
    assert [e.value for e in brussels.find("tomorrow in two hours", late)] == ["2026-12-11", "02:30"]
    assert [e.value for e in utc.find("tomorrow in two hours", late)] == ["2026-12-10", "01:30"]
    assert [e.value for e in matchers("time", zone="Asia/Seoul").find("in 90 minutes", late)] == ["10:00"]


def test_without_a_time_relative_dates_count_from_now():
    before = datetime.now(timezone.utc).date().isoformat()
    (today,) = matchers("date", zone="UTC").find("today")
    assert today.value in (before, datetime.now(timezone.utc).date().isoformat())


def test_a_bot_without_system_entities_has_no_extractor():
    assert not Matchers(parse_bot(bot({"product": {"type": "list", "values": ["tent"]}})).entities)._system
    assert not Matchers(())


def test_declaration_in_the_bot_file():
    definition = parse_bot(bot({"when": {"type": "system", "kind": "date"}, "amount": {"type": "system", "kind": "money"}},
                               timezone="Europe/Brussels", language="en"))
    assert [(e.name, e.type, e.kind) for e in definition.entities] == [("when", "system", "date"), ("amount", "system", "money")]
    assert (definition.language, definition.timezone) == ("en", "Europe/Brussels")
    stored = definition.to_dict()  # as a snapshot keeps it
    assert BotDefinition.from_dict(json.loads(json.dumps(stored))) == definition
    # a bot without system entities, a language or a time zone keeps its content hash
    plain = parse_bot(bot({"product": {"type": "list", "values": ["tent"]}}))
    assert (plain.language, plain.timezone) == ("en", "UTC")
    assert "language" not in plain.to_dict() and "timezone" not in plain.to_dict()
    assert "kind" not in plain.to_dict()["entities"][0]


@pytest.mark.parametrize("change, field, words", [
    ({"entities": {"when": {"type": "system", "kind": "dates"}}}, "entities.when.kind",
     "must be one of ['number', 'ordinal', 'money', 'date', 'time', 'duration'], got 'dates'"),
    ({"entities": {"when": {"type": "system"}}}, "entities.when.kind", "must be one of"),
    ({"entities": {"when": {"type": "system", "kind": "date", "pattern": "x"}}}, "entities.when.pattern",
     "unknown key for a system entity"),
    ({"entities": {"when": {"type": "system", "kind": "date"}, "day": {"type": "system", "kind": "date"}}},
     "entities.day.kind", "entity 'when' is already the date entity"),
    ({"timezone": "Europe/Brusels"}, "timezone", "unknown time zone 'Europe/Brusels'"),
    ({"timezone": 1}, "timezone", "unknown time zone 1"),
    ({"language": "xx"}, "language", "must be one of ['en', 'ko'], got 'xx'"),
])
def test_bad_declarations_are_refused_naming_the_field(change, field, words):
    data = {**bot({}), **change}
    with pytest.raises(DefinitionError) as caught:
        parse_bot(data, source="bot.yml")
    assert caught.value.field == field and words in caught.value.problem, caught.value


BOOKING = bot(
    {"when": {"type": "system", "kind": "date"}, "at": {"type": "system", "kind": "time"},
     "people": {"type": "system", "kind": "number"}, "amount": {"type": "system", "kind": "money"}},
    timezone="Europe/Brussels",
    dialogue={
        "slots": {
            "day": {"entity": "when", "questions": ["Which day?"]},
            "hour": {"entity": "at", "questions": ["At what time?"]},
            "guests": {"type": "number", "entity": "people", "questions": ["For how many people?"]},
            "budget": {"type": "number", "entity": "amount"},
        },
        "forms": {"book": {"slots": ["day", "hour", "guests"], "keep_slots": True}},
    },
)
BOOKING["intents"]["book"]["responses"] = ["Booked for {guests} on {day} at {hour}."]


def test_slots_fill_from_system_entities_through_the_dialogue():
    definition, spec = parse_spec(BOOKING, source="booking.yml")
    found = Matchers(definition.entities, language=definition.language, timezone=definition.timezone)
    responses, state = Responses.of(definition), DialogueState()

    def turn(text, intent, number):
        nonlocal state
        entities = tuple(e.to_dict() for e in found.find(text, NOW))
        out = step(spec, responses, state, Understanding(intent, 0.95, entities, text), number)
        state = out.state
        return out.reply_text

    assert turn("I'd like to book a table next Friday", "book", 1) == "At what time?"
    assert state.slots["day"] == "2026-12-11"
    assert turn("at half past seven in the evening, we are four", "book", 2) == "Booked for 4 on 2026-12-11 at 19:30."
    assert (state.slots["hour"], state.slots["guests"]) == ("19:30", 4)
    turn("our budget is 250 euros", "book", 3)
    assert state.slots["budget"] == 250  # a number slot takes a money entity's amount


def test_a_slot_that_could_never_take_the_kind_is_refused():
    data = bot({"when": {"type": "system", "kind": "date"}},
               dialogue={"slots": {"day": {"type": "number", "entity": "when"}}})
    with pytest.raises(DefinitionError, match="system entity 'when' gives dates, which a number slot never takes"):
        parse_spec(data, source="bot.yml")


@pytest.mark.slow
def test_a_trained_bot_serves_system_entities_with_the_turn_time():
    """parse_bot -> training -> snapshot manifest -> the numpy runtime: the system entities come
    with the prediction, relative to the ``now`` the node passes (the turn's received_at)."""
    from botyard.models.runtime import Predictor
    from botyard.training.config import TrainConfig
    from botyard.training.pipeline import train

    data = bot({"when": {"type": "system", "kind": "date"}, "at": {"type": "system", "kind": "time"}}, timezone=ZONE)
    data["intents"]["book"]["examples"] += ["can you come next Friday at 3pm", "bring it tomorrow", "deliver on 12 March"]
    trained = train(parse_bot(data), TrainConfig(epochs=8))
    predictor = Predictor(trained.manifest, trained.arrays)
    p = predictor.predict("deliver it next Friday at 3pm", now=NOW)
    assert p.intent == "book"
    assert [(e.entity, e.value, e.extractor) for e in p.entities] == [("when", "2026-12-11", "system"), ("at", "15:00", "system")]
    later = predictor.predict("deliver it tomorrow", now=NOW + 86400)
    assert [e.value for e in later.entities] == ["2026-12-11"]
    # replay and what-if share one prediction per text and re-find dates as of each turn's time
    assert predictor.at(later, "deliver it tomorrow", NOW).entities == predictor.predict("deliver it tomorrow", now=NOW).entities
    assert [e.value for e in predictor.at(later, "deliver it tomorrow", NOW).entities] == ["2026-12-10"]
