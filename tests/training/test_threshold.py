"""A bot file's own fallback threshold is the snapshot's (issue 26: 0.3 came out as 0.5)."""

import pytest

from botyard.models.definition import parse_bot
from botyard.models.runtime import Predictor
from botyard.snapshots.store import LocalSnapshotStore
from botyard.training.config import TrainConfig
from botyard.training.pipeline import train, train_to_store

CONFIG = TrainConfig(epochs=3, seed=1, vectors=False)


def tiny(threshold=None):
    """Fewer than 5 examples per intent: training holds none out, so calibration has nothing to go on (0.5)."""
    fallback = {"response": "Sorry?"} | ({"threshold": threshold} if threshold is not None else {})
    return parse_bot({
        "tenant": "tiny", "bot": "faq", "fallback": fallback,
        "intents": {
            "greet": {"examples": ["hi", "hello there", "good morning"], "responses": ["Hello!"]},
            "bye": {"examples": ["bye", "see you later", "good night"], "responses": ["Bye!"]},
            "hours": {"examples": ["when are you open", "opening hours", "are you open on sunday"], "responses": ["9-5"]},
        },
    })


@pytest.fixture(scope="module")
def calibrated():
    return train(tiny(), CONFIG)


def test_an_explicit_threshold_is_kept_and_calibration_only_reported(calibrated, tmp_path):
    store = LocalSnapshotStore(tmp_path)
    info, result = train_to_store(tiny(0.3), store, CONFIG)
    snapshot = store.load(info.id)
    assert snapshot.manifest["model"]["threshold"] == 0.3
    assert snapshot.manifest["metrics"]["calibrated_threshold"] == calibrated.manifest["model"]["threshold"] == 0.5
    assert Predictor.from_snapshot(snapshot).threshold == 0.3


def test_without_one_the_calibrated_threshold_is_the_snapshots(calibrated):
    assert "calibrated_threshold" not in calibrated.metrics
    assert Predictor(calibrated.manifest, calibrated.arrays).threshold == calibrated.manifest["model"]["threshold"]


def test_zero_is_a_threshold_too():
    result = train(tiny(0.0), CONFIG)
    assert result.manifest["model"]["threshold"] == 0.0
    assert Predictor(result.manifest, result.arrays).threshold == 0.0
