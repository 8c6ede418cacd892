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
from botyard.models.vectors import require as require_vectors

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


def bio_constraints(tags: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Penalties (0 or -inf) for starting with each tag and for each tag-to-tag move:
    ``I-x`` may only follow ``B-x`` or ``I-x``."""
    n = len(tags)
    start = np.zeros(n, np.float32)
    move = np.zeros((n, n), np.float32)
    for j, tag in enumerate(tags):
        if tag.startswith("I-"):
            start[j] = -np.inf
            for i, prev in enumerate(tags):
                if prev[2:] != tag[2:] or prev == "O":
                    move[i, j] = -np.inf
    return start, move


def viterbi(probs: np.ndarray, start: np.ndarray, move: np.ndarray) -> np.ndarray:
    """The most probable tag sequence that obeys the BIO constraints."""
    best = probs.argmax(axis=1)
    # The constraints only forbid moves; if the per-token best path breaks none, it is the answer.
    if start[best[0]] == 0 and not np.isinf(move[best[:-1], best[1:]]).any():
        return best
    with np.errstate(divide="ignore"):
        logp = np.log(probs)
    score = logp[0] + start
    back = np.zeros(probs.shape, np.int64)
    for t in range(1, len(probs)):
        cand = score[:, None] + move
        back[t] = cand.argmax(axis=0)
        score = cand[back[t], np.arange(probs.shape[1])] + logp[t]
    path = np.zeros(len(probs), np.int64)
    path[-1] = int(score.argmax())
    for t in range(len(probs) - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


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
            f32 = {k: np.asarray(v, np.float32) for k, v in arrays.items() if k not in ("vocabulary", "idf", "families")}
            vectors = require_vectors(model["vectors"]) if model.get("vectors") else None
            self.featurizer = Featurizer.from_arrays(
                arrays["vocabulary"], arrays["idf"], arrays["families"], model["features"],
                vectors, f32["vectors/center"] if vectors is not None else None,
            )
            self.w_vec = f32.get("vectors/kernel")
            """Projection of the word vectors (None: they are fed as they are)."""
            self.vdim = 0 if vectors is None else vectors.dim if self.w_vec is None else self.w_vec.shape[1]
            """Width of the word-vector part of the network's input (0: none)."""
            self.embed = f32["embed"]
            self.w_sent, self.b_sent = f32["sentence/kernel"], f32["sentence/bias"]
            self.w_int, self.b_int = f32["intent/kernel"], f32["intent/bias"]
            self.has_tags = len(self.tags) > 1
            self.pool = bool(model.get("shape", {}).get("pool", False))
            if self.has_tags or self.pool:
                layers = int(model.get("shape", {}).get("conv_layers", 2))
                self.conv = [(f32[f"conv{i}/kernel"], f32[f"conv{i}/bias"]) for i in range(1, layers + 1)]
            if self.has_tags:
                self.w_tag, self.b_tag = f32["tags/kernel"], f32["tags/bias"]
                self.tag_start, self.tag_move = bio_constraints(self.tags)
        except KeyError as exc:
            raise ModelError(f"snapshot lacks {exc.args[0]!r}") from None
        if (
            self.embed.shape[0] != self.featurizer.size or self.w_int.shape[1] != len(self.labels)
            or self.w_sent.shape[0] != self.embed.shape[1] + self.vdim
        ):
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
        rows, weights, t_rows, t_weights, owner = self.featurizer.analyze(tokens, self.has_tags or self.pool)
        bag = weights @ self.embed[rows] if len(rows) else np.zeros(self.embed.shape[1], np.float32)
        if self.vdim:  # [bag, vec] @ W == bag @ W[:embed] + vec @ W[embed:]
            vec, tok_vec = self.featurizer.vectors.encode(tokens, self.featurizer.center)
            if self.w_vec is not None:
                vec = vec @ self.w_vec
            width = len(bag)
            sentence = _relu(bag @ self.w_sent[:width] + vec @ self.w_sent[width:] + self.b_sent)
        else:
            sentence = _relu(bag @ self.w_sent + self.b_sent)
        x = None
        if (self.has_tags or self.pool) and tokens:
            # Each token's vector is a weighted sum of its features' rows: one small matmul.
            mix = np.zeros((len(tokens), len(t_rows)), np.float32)
            mix[owner, np.arange(len(t_rows))] = t_weights
            x = mix @ self.embed[t_rows]
            if self.vdim:
                x = np.concatenate([x, tok_vec if self.w_vec is None else tok_vec @ self.w_vec], axis=1)
            for kernel, bias in self.conv:
                x = _relu(_conv_same(x, kernel, bias))
        if self.pool:
            pooled = x.max(axis=0) if x is not None else np.zeros(self.conv[-1][1].shape, np.float32)
            logits = sentence @ self.w_int[: len(sentence)] + pooled @ self.w_int[len(sentence) :] + self.b_int
        else:
            logits = sentence @ self.w_int + self.b_int
        intent = _softmax(logits)
        if not self.has_tags or x is None:
            return intent, None
        # [x, sentence] @ W == x @ W[:conv] + sentence @ W[conv:]
        split = x.shape[1]
        logits = x @ self.w_tag[:split] + (sentence @ self.w_tag[split:] + self.b_tag)
        return intent, _softmax(logits)

    # ------------------------------------------------------------------ serving
    def decode(self, tag_probs: np.ndarray) -> np.ndarray:
        """Tag indices per token: the best BIO-consistent path (Viterbi)."""
        return viterbi(tag_probs, self.tag_start, self.tag_move)

    def predict_tokens(self, tokens: Sequence[str]) -> tuple[str, float, list[str]]:
        """Intent, confidence and one BIO tag per token (for evaluation on pre-tokenised data)."""
        intent, tags = self.forward(tokens)
        best = int(intent.argmax())
        tag_names = [self.tags[i] for i in self.decode(tags)] if tags is not None else ["O"] * len(tokens)
        return self.labels[best], float(intent[best]), tag_names

    def predict(self, text: str) -> Prediction:
        tokens = tokenize(text)
        intent, tags = self.forward([t.text for t in tokens])
        best = int(intent.argmax())
        return self.prediction(text, tokens, self.labels[best], float(intent[best]), tags)

    def prediction(self, text: str, tokens: Sequence, label: str, confidence: float, tags: np.ndarray | None) -> Prediction:
        """The answer from the network's outputs: entities cut from the best tag path (if
        ``tags``), the matchers' entities, and whether to fall back."""
        entities: list[Entity] = []
        if tags is not None:
            path = self.decode(tags)
            for entity, first, last in tag_spans([self.tags[i] for i in path]):
                start, end = tokens[first].start, tokens[last - 1].end
                conf = float(tags[np.arange(first, last), path[first:last]].mean())
                entities.append(Entity(entity, text[start:end], start, end, "model", round(conf, 4)))
        if self.matchers:
            entities.extend(self.matchers.find(text))
        entities.sort(key=lambda e: (e.start, -e.end, e.entity))
        fallback = label == OUT_OF_SCOPE or confidence < self.threshold
        return Prediction(label, confidence, tuple(entities), fallback)
