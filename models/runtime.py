"""The serving runtime: a frozen snapshot run with numpy alone (no TensorFlow).

The network is ``softmax(relu(x W1 + b1) W2 + b2)`` over the featurizer's sparse
vector ``x``; because ``x`` is sparse, ``x W1`` is a weighted sum of a few rows of
``W1`` (an embedding bag), which costs microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from botyard.models.definition import BotDefinition
from botyard.models.errors import ModelError
from botyard.models.featurizer import Featurizer

MODEL_KIND = "bag-mlp"


@dataclass(frozen=True, slots=True)
class Prediction:
    intent: str
    confidence: float


class Predictor:
    """Classifies utterances with one snapshot's weights."""

    def __init__(self, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        if manifest.get("model", {}).get("kind") != MODEL_KIND:
            raise ModelError(f"unsupported model kind {manifest.get('model', {}).get('kind')!r}")
        model = manifest["model"]
        self.labels: list[str] = list(model["labels"])
        self.featurizer = Featurizer.from_manifest(model["vocabulary"], model["features"])
        self.w1 = np.asarray(arrays["dense1/kernel"], np.float32)
        self.b1 = np.asarray(arrays["dense1/bias"], np.float32)
        self.w2 = np.asarray(arrays["output/kernel"], np.float32)
        self.b2 = np.asarray(arrays["output/bias"], np.float32)
        if self.w1.shape[0] != self.featurizer.size or self.w2.shape[1] != len(self.labels):
            raise ModelError("snapshot weights do not match its vocabulary and labels")
        self.definition = BotDefinition.from_dict(manifest["definition"])
        self.nbytes = sum(a.nbytes for a in (self.w1, self.b1, self.w2, self.b2))

    @classmethod
    def from_snapshot(cls, snapshot) -> "Predictor":
        return cls(snapshot.manifest, snapshot.arrays)

    def probabilities(self, text: str) -> np.ndarray:
        idx, val = self.featurizer.sparse(text)
        hidden = val @ self.w1[idx] + self.b1 if len(idx) else self.b1.copy()
        np.maximum(hidden, 0.0, out=hidden)
        logits = hidden @ self.w2 + self.b2
        logits -= logits.max()
        exp = np.exp(logits)
        return exp / exp.sum()

    def predict(self, text: str) -> Prediction:
        probs = self.probabilities(text)
        best = int(probs.argmax())
        return Prediction(self.labels[best], float(probs[best]))
