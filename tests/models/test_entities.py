"""A small bot with learned, list and regex entities, and out-of-scope examples, end to end."""

from pathlib import Path

import pytest

from botyard.models.definition import load_bot
from botyard.models.runtime import Predictor
from botyard.models.text import bio_tags, parse_annotated, tag_spans, tokenize
from botyard.training.config import TrainConfig
from botyard.training.pipeline import train

BOT = Path(__file__).resolve().parent.parent / "data" / "city-desk.yml"


@pytest.fixture(scope="module")
def trained():
    return train(load_bot(BOT), TrainConfig(epochs=40, batch_size=16))


@pytest.fixture(scope="module")
def predictor(trained):
    return Predictor(trained.manifest, trained.arrays)


def test_annotations_become_spans_and_bio_tags():
    text, spans = parse_annotated("a taxi to [San Francisco](city) at [9](hour)")
    assert text == "a taxi to San Francisco at 9"
    assert [(s.entity, text[s.start : s.end]) for s in spans] == [("city", "San Francisco"), ("hour", "9")]
    tokens = tokenize(text)
    tags = bio_tags(tokens, spans)
    assert tags == ["O", "O", "O", "B-city", "I-city", "O", "B-hour"]
    assert tag_spans(tags) == [("city", 3, 5), ("hour", 6, 7)]
    assert tag_spans(["I-city", "I-city", "O", "B-x", "I-y"]) == [("city", 0, 2), ("x", 3, 4), ("y", 4, 5)]


@pytest.mark.parametrize(
    "text, intent, entity",
    [
        # held out: none of these cities, drinks phrasings or numbers is in the bot file
        ("book a taxi to Stockholm please", "book_taxi", ("city", "Stockholm", "model")),
        ("i need a cab to Buenos Aires", "book_taxi", ("city", "Buenos Aires", "model")),
        ("get me a taxi to Tallinn", "book_taxi", ("city", "Tallinn", "model")),
        ("one latte macchiato please", "order_drink", ("drink", "latte", "list")),
        ("could I get an OJ", "order_drink", ("drink", "orange juice", "list")),
        ("call me on +49 30 9876543", "call_back", ("phone", "+49 30 9876543", "regex")),
    ],
)
def test_entities_on_held_out_utterances(predictor, text, intent, entity):
    prediction = predictor.predict(text)
    assert prediction.intent == intent and not prediction.fallback
    found = [(e.entity, e.value, e.extractor) for e in prediction.entities]
    assert entity in found
    for e in prediction.entities:  # spans point into the original text
        assert e.end > e.start
        if e.extractor != "list":
            assert text[e.start : e.end] == e.value


@pytest.mark.parametrize("text", ["what's the population of china", "tell me something funny", "what's the weather in Rome"])
def test_out_of_scope_gets_the_fallback(predictor, text):
    prediction = predictor.predict(text)
    assert prediction.fallback, prediction


@pytest.mark.parametrize("text", ["blorp zzz", "asdkjh qwe", "?!"])
def test_an_utterance_of_no_known_word_gets_the_fallback(predictor, text):
    """Gibberish shares character n-grams with real words, so the network may still be
    confident; with no word the model was trained on, the bot says it did not understand."""
    from botyard.models.batch import predict_batch

    assert predictor.predict(text).fallback
    assert predict_batch(predictor, [text])[0].fallback
    assert not predictor.predict("hello blorp").fallback  # one known word is enough to answer


def test_threshold_from_the_bot_file_overrides_the_calibrated_one(trained, predictor):
    calibrated = trained.manifest["model"]["threshold"]
    assert 0.0 < calibrated < 1.0 and predictor.threshold == calibrated
    assert predictor.predict("hello").fallback is False
    definition = dict(trained.manifest["definition"])
    definition["fallback"] = {**definition["fallback"], "threshold": 1.0}
    strict = Predictor({**trained.manifest, "definition": definition}, trained.arrays)
    assert strict.threshold == 1.0
    assert strict.predict("hello").fallback is True
