"""A fine-tuned sentence encoder (numpy only): a cascade's most accurate second model.

``botyard train --tuned`` fine-tunes the top layers of the shared MiniLM
(:mod:`botyard.models.encoder`; ``TrainConfig.tuned_layers`` of its six) on the bot's own
examples, with two linear heads: the intent on the mean of the last layer over the
utterance's pieces (``[CLS]`` and ``[SEP]`` included), an entity tag per token on the
token's first piece. The input embeddings and the layers below the tuned ones stay frozen,
so the snapshot carries the tuned layers and the heads (about 7 MB per layer; the manifest's
``frozen`` says how many layers are the encoder's) and refers to the installed encoder for
the rest, by the hash of its weights file.

It runs the encoder's own forward pass with the snapshot's layers: milliseconds per
utterance (a hundred times the bag model), so a snapshot serves it only as a cascade's
second model, for the turns the bag model is unsure of, blended with the bag model's
answer (``(1 - blend) * bag + blend * tuned``, the weight chosen on validation data).
The Keras twin that trains it is :mod:`botyard.training.tuned_network`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping, Sequence

import numpy as np

from botyard.models.encoder import CACHE as ENCODER_CACHE
from botyard.models.encoder import LAYERS
from botyard.models.encoder import require as require_encoder
from botyard.models.errors import ModelError
from botyard.models.numerics import softmax
from botyard.models.recent import Recent

KIND = "tuned-minilm"
PARTS = ("qkv/kernel", "qkv/bias", "out/kernel", "out/bias", "norm1/gain", "norm1/bias",
         "up/kernel", "up/bias", "down/kernel", "down/bias", "norm2/gain", "norm2/bias")
"""A layer's arrays (``layer{i}/`` + part), in the order :attr:`SentenceEncoder.layers` holds them."""
CACHE = ENCODER_CACHE
"""Utterances whose outputs a loaded model keeps (a burst primed together, then answered): as many
as the sentence encoder keeps (1,024; ``BOTYARD_ENCODER_CACHE``)."""


def layer_arrays(layers: Sequence[tuple]) -> dict[str, np.ndarray]:
    """Snapshot arrays of six layers held as :attr:`SentenceEncoder.layers` holds them."""
    return {f"layer{i}/{part}": np.asarray(a, np.float32)
            for i, layer in enumerate(layers) for part, a in zip(PARTS, _flat(layer))}


def _flat(layer: tuple) -> list[np.ndarray]:
    """A layer's arrays in :data:`PARTS` order (the layer norms' pairs unpacked)."""
    return [*layer[:4], *layer[4], *layer[5:9], *layer[9]]


class TunedModel:
    """Intent and tag probabilities from a fine-tuned MiniLM's snapshot arrays."""

    def __init__(self, model: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        if model.get("kind") != KIND:
            raise ModelError(f"unsupported model kind {model.get('kind')!r}; expected {KIND!r}")
        self.encoder = require_encoder(model.get("encoder") or {})
        self.labels: list[str] = list(model.get("labels", ()))
        self.tags: list[str] = list(model.get("tags", ()))
        self.has_tags = len(self.tags) > 1
        frozen = model.get("frozen", 0)
        if type(frozen) is not int or not 0 <= frozen < LAYERS:
            raise ModelError(f"a tuned model's frozen layers must be an integer in [0, {LAYERS}), not {frozen!r}")
        self.frozen = frozen
        """The bottom layers taken from the installed encoder (shared, memory-mapped), not the snapshot."""
        try:
            a = {k: np.asarray(v, np.float32) for k, v in arrays.items()}
            self.layers = list(self.encoder.layers[:frozen])
            for i in range(frozen, LAYERS):
                p = [a[f"layer{i}/{part}"] for part in PARTS]
                self.layers.append((*p[:4], (p[4], p[5]), *p[6:10], (p[10], p[11])))
            self.w_int, self.b_int = a["intent/kernel"], a["intent/bias"]
            if self.has_tags:
                self.w_tag, self.b_tag = a["tags/kernel"], a["tags/bias"]
        except KeyError as exc:
            raise ModelError(f"snapshot lacks {exc.args[0]!r}") from None
        dim = self.encoder.dim
        if self.w_int.shape != (dim, len(self.labels)) or (self.has_tags and self.w_tag.shape != (dim, len(self.tags))) \
                or any(x.shape != y.shape for mine, theirs in zip(self.layers, self.encoder.layers)
                       for x, y in zip(_flat(mine), _flat(theirs))):
            raise ModelError("snapshot weights do not match the encoder, labels or tags")
        self.reserved = CACHE * 4 * (len(self.labels) + 32 * len(self.tags))
        """What the cache of outputs can grow to (utterances of 16 tokens: tag probabilities and logits)."""
        self.nbytes = sum(np.asarray(v).nbytes for v in arrays.values()) + self.reserved
        self._cache = Recent(CACHE)

    def forward(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """Intent probabilities and, if the bot has learned entities, tag probabilities per token."""
        return self._outputs(tokens)[:2]

    def _outputs(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, bool]:
        """What :meth:`Predictor._outputs` returns: intent probabilities, tag probabilities and
        tag logits minus each token's largest (None without tags or tokens), and True (whether
        the utterance has a known word is the bag model's to say)."""
        key = tuple(tokens)
        out = self._cache.get(key)
        if out is None:
            out = self._compute(key)
            self._cache.put(key, out)
        return out

    def _compute(self, tokens: Sequence[str]) -> tuple:
        ids, firsts = self.encoder.first_pieces(tokens)
        last = self.encoder.hidden(np.array([ids]), np.ones((1, len(ids)), np.float32), self.layers)[1][0]
        intent = softmax(last.mean(axis=0) @ self.w_int + self.b_int)
        if not self.has_tags or not len(firsts):
            return intent, None, None, True
        logits = last[firsts] @ self.w_tag + self.b_tag
        shifted = logits - logits.max(axis=-1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=-1, keepdims=True)
        return intent, probs, shifted, True

    def prime(self, utterances: Sequence[Sequence[str]]) -> int:
        """Compute the outputs of the utterances not yet cached, one utterance per task spread
        over the cores (each exactly as :meth:`forward` computes it alone), and cache them.
        Returns how many were computed."""
        missing = self._cache.missing(tuple(u) for u in utterances)
        if len(missing) < 2:
            return 0
        with ThreadPoolExecutor(min(len(missing), os.cpu_count() or 1), thread_name_prefix="tuned") as pool:
            for key, out in zip(missing, pool.map(self._compute, missing)):
                self._cache.put(key, out)
        return len(missing)
