"""Issue 26: calibrated on folds, fitted on every example, the in-scope score in the snapshot, and
why a turn falls back in its answer."""

import math
from dataclasses import replace

import pytest

from botyard.models.batch import predict_batch
from botyard.models.definition import parse_bot
from botyard.models.prediction import FALLBACK_REASONS
from botyard.models.runtime import Predictor
from botyard.models.scope import PRIOR
from botyard.ops.snapshot_diff import manifest_diff
from botyard.training.calibration import CONFIDENCE_PRIOR
from botyard.training.config import TrainConfig
from botyard.training.pipeline import train

CONFIG = TrainConfig(epochs=8, seed=1, vectors=False)


def bot(threshold=None, examples=6):
    fallback = {"response": "Sorry?"} | ({"threshold": threshold} if threshold is not None else {})
    intents = {
        "greet": ["hi", "hello there", "good morning", "hey", "hello", "hi there", "morning", "good evening"],
        "bye": ["bye", "see you later", "good night", "goodbye", "bye bye", "see you", "later", "farewell"],
        "hours": ["when are you open", "opening hours", "are you open on sunday", "what time do you open",
                  "when do you close", "are you open today", "hours on saturday", "what are your hours"],
    }
    return parse_bot({
        "tenant": "tiny", "bot": "scope", "fallback": fallback,
        "intents": {name: {"examples": ex[:examples], "responses": ["ok"]} for name, ex in intents.items()},
        "out_of_scope": ["tell me a joke", "what is the weather", "who won the game", "sing a song",
                         "what is the capital of france"],
    })


@pytest.fixture(scope="module")
def trained():
    return train(bot(), CONFIG)


def test_three_folds_calibrate_and_the_model_is_fitted_on_every_example(trained):
    calibration = trained.manifest["model"]["calibration"]
    assert calibration["method"] == "3-fold" and calibration["folds"] == 3 and calibration["final_fit"]
    assert calibration["held_out"] == 3 * 6 + 5  # every example held out once
    assert trained.metrics["train_examples"] == 3 * 6 + 5 and trained.metrics["validation_examples"] == 23
    for rule in ("score", "confidence"):
        part = calibration[rule]
        assert len(part["per_fold"]) == 3 and part["spread"] == round(max(part["per_fold"]) - min(part["per_fold"]), 4)
        assert 0 < part["prior_weight"] < 1  # a handful of answers: partly the prior
    assert trained.manifest["model"]["scope"]["threshold"] == calibration["score"]["threshold"]
    assert trained.manifest["model"]["threshold"] == calibration["confidence"]["threshold"]
    assert 0 <= trained.metrics["validation_out_of_scope_recall"] <= 1


def test_why_a_turn_falls_back_is_in_its_answer(trained):
    p = Predictor(trained.manifest, trained.arrays)
    assert p.score_threshold == trained.manifest["model"]["scope"]["threshold"]
    hello = p.predict("hello there")
    assert hello.intent == "greet" and not hello.fallback and hello.fallback_reason is None and hello.score > 0
    assert p.predict("blorp zzzq").fallback_reason == "no_known_word"
    assert p.predict("tell me a joke").fallback_reason == "out_of_scope_class"
    p.score_threshold = math.inf  # every answer is below it
    assert p.predict("hello there").fallback_reason == "low_score"
    assert p.predict("hello there").fallback
    p.score_threshold = -math.inf
    texts = ["hello there", "blorp zzzq", "tell me a joke", "when are you open", "bye then", ""]
    for text, batched in zip(texts, predict_batch(p, texts)):
        alone = p.predict(text)
        assert (batched.intent, batched.fallback, batched.fallback_reason) == (alone.intent, alone.fallback,
                                                                                alone.fallback_reason)
        assert batched.fallback_reason in (None, *FALLBACK_REASONS)
        assert batched.score == pytest.approx(alone.score, abs=1e-4)


def test_a_bot_files_threshold_is_the_whole_rule(trained):
    fixed = train(bot(threshold=0.99), replace(CONFIG, folds=2))
    p = Predictor(fixed.manifest, fixed.arrays)
    assert p.score_threshold is None and p.threshold == 0.99  # the score is computed, not a bar
    answer = p.predict("good morning")
    assert answer.score is not None
    assert answer.fallback_reason == ("low_confidence" if answer.confidence < 0.99 else None)
    assert fixed.manifest["model"]["calibration"]["method"] == "2-fold"


def test_without_a_final_fit_the_snapshot_is_the_first_folds_model():
    once = train(bot(), replace(CONFIG, folds=1, no_final_fit=True, validation_share=0.2))  # one of each intent's 6
    calibration = once.manifest["model"]["calibration"]
    assert calibration["method"] == "held-out" and not calibration["final_fit"] and "per_fold" not in calibration["score"]
    assert once.metrics["train_examples"] + once.metrics["validation_examples"] == 23


def test_with_nothing_to_hold_out_the_priors_are_the_thresholds_and_diff_shows_the_calibration(trained):
    tiny = train(bot(examples=4), replace(CONFIG, epochs=3))  # fewer than 5 per intent: nothing held out
    calibration = tiny.manifest["model"]["calibration"]
    assert calibration["method"] == "none" and calibration["held_out"] == 5  # only the out-of-scope examples
    assert calibration["score"]["threshold"] == PRIOR and calibration["score"]["prior_weight"] == 1.0
    assert tiny.manifest["model"]["threshold"] == CONFIDENCE_PRIOR
    diff = manifest_diff(trained.manifest, tiny.manifest)
    assert diff["calibration"]["a"]["method"] == "3-fold" and diff["calibration"]["b"]["method"] == "none"
    assert diff["calibration"]["a"]["score"]["threshold"] == trained.manifest["model"]["scope"]["threshold"]
