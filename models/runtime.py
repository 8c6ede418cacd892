"""The serving runtime: a frozen snapshot run with numpy alone (no TensorFlow).

It computes exactly what :mod:`botyard.models.network` computes in Keras (a test holds
the two within 1e-5): sums of a few embedding rows, three or four small matrix
products, and a softmax; tens of microseconds per utterance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from botyard.models.definition import OUT_OF_SCOPE, BotDefinition
from botyard.models.entities import Entity, Matchers
from botyard.models.errors import ModelError
from botyard.models.featurizer import Featurizer
from botyard.models.text import tag_spans, tokenize

MODEL_KIND = "joint-bag-cnn"


@dataclass(frozen=True, slots=True)
class Prediction:
    intent: str
    confidence: float
    entities: tuple[Entity, ...] = ()
    fallback: bool = False
    """True when the bot should say "I don't know": out of scope or below the threshold."""


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0, out=x)


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    return x / x.sum(axis=-1, keepdims=True)


def _conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Keras ``Conv1D(padding="same")`` for an odd width: zero-pad, stack windows, one matmul."""
    width, n, d = kernel.shape[0], x.shape[0], x.shape[1]
    pad = width // 2
    windows = np.zeros((n, width * d), np.float32)
    for k in range(width):  # window slot k holds token t + k - pad
        lo, hi = max(0, pad - k), min(n, n + pad - k)
        windows[lo:hi, k * d : (k + 1) * d] = x[lo + k - pad : hi + k - pad]
    return windows @ kernel.reshape(-1, kernel.shape[2]) + bias


_single_threaded_blas = None


def _limit_blas_threads() -> None:
    """One BLAS thread: a batch-1 product is microseconds, and waking threads costs more
    (a 10x384 by 384x128 product takes 8 us on one thread, 17-31 us on two)."""
    global _single_threaded_blas
    if _single_threaded_blas is None:
        _single_threaded_blas = threadpool_limits(1, user_api="blas")


class Predictor:
    """Intents and entities of utterances, with one snapshot's weights."""

    def __init__(self, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        _limit_blas_threads()
        model = manifest.get("model", {})
        if model.get("kind") != MODEL_KIND:
            raise ModelError(f"unsupported model kind {model.get('kind')!r}; this runtime serves {MODEL_KIND!r}")
        try:
            self.labels: list[str] = list(model["labels"])
            self.tags: list[str] = list(model.get("tags", ()))
            self.featurizer = Featurizer.from_arrays(arrays["vocabulary"], arrays["idf"], model["features"])
            f32 = {k: np.asarray(v, np.float32) for k, v in arrays.items() if k not in ("vocabulary",)}
            self.embed = f32["embed"]
            self.w_sent, self.b_sent = f32["sentence/kernel"], f32["sentence/bias"]
            self.w_int, self.b_int = f32["intent/kernel"], f32["intent/bias"]
            self.has_tags = len(self.tags) > 1
            if self.has_tags:
                self.conv = [(f32[f"{c}/kernel"], f32[f"{c}/bias"]) for c in ("conv1", "conv2")]
                self.w_tag, self.b_tag = f32["tags/kernel"], f32["tags/bias"]
        except KeyError as exc:
            raise ModelError(f"snapshot lacks {exc.args[0]!r}") from None
        if self.embed.shape[0] != self.featurizer.size or self.w_int.shape[1] != len(self.labels):
            raise ModelError("snapshot weights do not match its vocabulary and labels")
        self.definition = BotDefinition.from_dict(manifest["definition"]) if "definition" in manifest else None
        calibrated = model.get("threshold", 0.5)
        configured = self.definition.fallback.threshold if self.definition else None
        self.threshold: float = calibrated if configured is None else configured
        self.matchers = Matchers(self.definition.entities if self.definition else ())
        self.nbytes = sum(a.nbytes for a in arrays.values())

    @classmethod
    def from_snapshot(cls, snapshot) -> "Predictor":
        return cls(snapshot.manifest, snapshot.arrays)

    # ------------------------------------------------------------------ network
    def forward(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """Intent probabilities and, if the bot has learned entities, tag probabilities per token."""
        feat = self.featurizer
        rows, weights = feat.sentence(tokens)
        bag = weights @ self.embed[rows] if len(rows) else np.zeros(self.embed.shape[1], np.float32)
        sentence = _relu(bag @ self.w_sent + self.b_sent)
        intent = _softmax(sentence @ self.w_int + self.b_int)
        if not self.has_tags or not tokens:
            return intent, None
        n = len(tokens)
        hashes: list[int] = []
        owner: list[int] = []
        for j, token in enumerate(tokens):
            h = feat._token_hashes(token)
            hashes.extend(h)
            owner.extend([j] * len(h))
        h = np.asarray(hashes, np.uint32)
        pos = np.searchsorted(feat.vocabulary, h)
        pos[pos == len(feat.vocabulary)] = 0
        known = feat.vocabulary[pos] == h if len(feat.vocabulary) else np.zeros(len(h), bool)
        owner_known = np.asarray(owner, np.int64)[known]
        # Each token's vector is the mean of its known features' rows: one small matmul.
        counts = np.bincount(owner_known, minlength=n)
        mean = np.zeros((n, len(owner_known)), np.float32)
        mean[owner_known, np.arange(len(owner_known))] = 1.0 / counts[owner_known]
        x = mean @ self.embed[pos[known] + 1]
        for kernel, bias in self.conv:
            x = _relu(_conv_same(x, kernel, bias))
        # [x, sentence] @ W == x @ W[:conv] + sentence @ W[conv:]
        split = x.shape[1]
        logits = x @ self.w_tag[:split] + (sentence @ self.w_tag[split:] + self.b_tag)
        return intent, _softmax(logits)

    # ------------------------------------------------------------------ serving
    def predict_tokens(self, tokens: Sequence[str]) -> tuple[str, float, list[str]]:
        """Intent, confidence and one BIO tag per token (for evaluation on pre-tokenised data)."""
        intent, tags = self.forward(tokens)
        best = int(intent.argmax())
        tag_names = [self.tags[i] for i in tags.argmax(axis=1)] if tags is not None else ["O"] * len(tokens)
        return self.labels[best], float(intent[best]), tag_names

    def predict(self, text: str) -> Prediction:
        tokens = tokenize(text)
        intent, tags = self.forward([t.text for t in tokens])
        best = int(intent.argmax())
        label, confidence = self.labels[best], float(intent[best])
        entities: list[Entity] = []
        if tags is not None:
            names = [self.tags[i] for i in tags.argmax(axis=1)]
            for entity, first, last in tag_spans(names):
                start, end = tokens[first].start, tokens[last - 1].end
                conf = float(tags[np.arange(first, last), tags[first:last].argmax(axis=1)].mean())
                entities.append(Entity(entity, text[start:end], start, end, "model", round(conf, 4)))
        if self.matchers:
            entities.extend(self.matchers.find(text))
        entities.sort(key=lambda e: (e.start, -e.end, e.entity))
        fallback = label == OUT_OF_SCOPE or confidence < self.threshold
        return Prediction(label, confidence, tuple(entities), fallback)
