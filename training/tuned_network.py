"""The fine-tuned MiniLM in Keras (training only; serving runs :mod:`botyard.models.tuned`).

MiniLM-L6's top layers as trainable weights (all six, or the last ``6 - frozen``),
initialised from the installed encoder (:mod:`botyard.models.encoder`); its input embeddings
and the layers below them as frozen weights; two linear heads::

    piece ids --embeddings, first `frozen` layers (frozen)--> the other layers --mean over pieces--> Dense  intent
                                                                             \\--first piece of each token--> Dense  tag

Training computes the frozen part once per example (:meth:`TunedEncoder.below`) and trains
on its output (:meth:`TunedEncoder.above`).

The same formulas as the numpy forward pass (exact-erf GELU, layer norm with epsilon
1e-12, masked attention adding -1e9), so the runtime equals this model within float32
rounding. Importing this module imports Keras.
"""

from __future__ import annotations

import math
from typing import Mapping

import keras
import numpy as np
from keras import ops

from botyard.models.encoder import HEADS, SentenceEncoder
from botyard.models.tuned import PARTS, layer_arrays

DROPOUT = 0.1
HEAD_ARRAYS = ("intent/kernel", "intent/bias", "tags/kernel", "tags/bias")


def _name(array: str) -> str:
    """A Keras weight's name for a snapshot array's (Keras refuses ``/``)."""
    return array.replace("/", "_")


class TunedEncoder(keras.Model):
    """Inputs ``ids``/``mask`` ``[batch, pieces]`` and ``first`` ``[batch, tokens]``; :meth:`logits`
    for training, probabilities (``{"intent", "tags"}``) from :meth:`call`."""

    def __init__(self, encoder: SentenceEncoder, labels: int, tags: int, seed: int = 0,
                 layers: Mapping[str, np.ndarray] | None = None, frozen: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dim, self.has_tags, self.frozen = encoder.dim, tags > 1, frozen

        def weight(name: str, value: np.ndarray, trainable: bool = False):
            v = self.add_weight(shape=value.shape, initializer="zeros", trainable=trainable, name=_name(name))
            v.assign(np.asarray(value, np.float32))
            return v

        self.word, self.position = weight("word", encoder.word), weight("position", encoder.position)
        self.type0 = weight("type0", encoder.type0)
        self.norm0 = (weight("norm0/gain", encoder.norm0[0]), weight("norm0/bias", encoder.norm0[1]))
        start = {**layer_arrays(encoder.layers), **(layers or {})}
        self.fixed, self.body = [], []
        """Per layer, its 12 weights in :data:`PARTS` order: the frozen ones, then the trained ones."""
        for i in range(len(encoder.layers)):
            trainable = i >= frozen
            (self.body if trainable else self.fixed).append(
                [weight(f"layer{i}/{part}", start[f"layer{i}/{part}"], trainable) for part in PARTS])
        init = keras.initializers.GlorotUniform(seed=seed)
        self.w_int = self.add_weight(shape=(self.dim, labels), initializer=init, name=_name("intent/kernel"))
        self.b_int = self.add_weight(shape=(labels,), initializer="zeros", name=_name("intent/bias"))
        self.heads = [self.w_int, self.b_int]
        """The heads' weights, named in :data:`HEAD_ARRAYS` order (the tag head's only with tags)."""
        if self.has_tags:
            self.w_tag = self.add_weight(shape=(self.dim, tags), initializer=init, name=_name("tags/kernel"))
            self.b_tag = self.add_weight(shape=(tags,), initializer="zeros", name=_name("tags/bias"))
            self.heads += [self.w_tag, self.b_tag]
        self.drop = keras.layers.Dropout(DROPOUT, seed=seed)

    @staticmethod
    def _norm(x, gain, bias):
        x = x - ops.mean(x, axis=-1, keepdims=True)
        return x / ops.sqrt(ops.mean(x * x, axis=-1, keepdims=True) + 1e-12) * gain + bias

    def below(self, ids, mask):
        """The frozen part's output ``[batch, pieces, dim]``: the embeddings and the first ``frozen``
        layers (no dropout: they do not train)."""
        x = ops.take(self.word, ids, axis=0) + self.position[: ops.shape(ids)[1]] + self.type0
        x = self._norm(x, *self.norm0)
        masked = self._masked(mask)
        for weights in self.fixed:
            x = self._layer(x, masked, weights, False)
        return x

    def above(self, x, mask, first, training: bool = False):
        """Intent logits ``[batch, labels]`` and tag logits ``[batch, tokens, tags]`` (None without
        tags) from the frozen part's output."""
        masked = self._masked(mask)
        for weights in self.body:
            x = self._layer(x, masked, weights, training)
        pooled = ops.sum(x * mask[..., None], axis=1) / ops.sum(mask, axis=1, keepdims=True)
        intent = ops.matmul(self.drop(pooled, training=training), self.w_int) + self.b_int
        if not self.has_tags:
            return intent, None
        words = ops.take_along_axis(self.drop(x, training=training), ops.expand_dims(first, -1), axis=1)
        return intent, ops.matmul(words, self.w_tag) + self.b_tag

    @staticmethod
    def _masked(mask):
        """What attention adds to each score: -1e9 for padding, ``[batch, 1, 1, pieces]``."""
        return ops.expand_dims(ops.expand_dims((1.0 - mask) * -1e9, 1), 1)

    def _layer(self, x, masked, weights, training: bool):
        """One transformer layer (post-norm attention, then the GELU MLP); ``masked`` from :meth:`_masked`."""
        qkv, qkv_b, out, out_b, g1, b1, up, up_b, down, down_b, g2, b2 = weights
        dim, width = self.dim, self.dim // HEADS
        b, n = ops.shape(x)[0], ops.shape(x)[1]
        h = ops.transpose(ops.reshape(ops.matmul(x, qkv) + qkv_b, (b, n, 3, HEADS, width)), (2, 0, 3, 1, 4))
        scores = ops.softmax(ops.matmul(h[0], ops.transpose(h[1], (0, 1, 3, 2))) * (1.0 / math.sqrt(width)) + masked, axis=-1)
        context = ops.reshape(ops.transpose(ops.matmul(scores, h[2]), (0, 2, 1, 3)), (b, n, dim))
        x = self._norm(x + self.drop(ops.matmul(context, out) + out_b, training=training), g1, b1)
        u = ops.matmul(x, up) + up_b
        u = 0.5 * u * (1.0 + ops.erf(u * (1.0 / math.sqrt(2.0))))
        return self._norm(x + self.drop(ops.matmul(u, down) + down_b, training=training), g2, b2)

    def logits(self, inputs, training: bool = False):
        """Intent logits ``[batch, labels]`` and tag logits ``[batch, tokens, tags]`` (None without tags)."""
        return self.above(self.below(inputs["ids"], inputs["mask"]), inputs["mask"], inputs["first"], training)

    def call(self, inputs, training: bool = False):
        intent, tags = self.logits(inputs, training)
        out = {"intent": ops.softmax(intent, axis=-1)}
        if tags is not None:
            out["tags"] = ops.softmax(tags, axis=-1)
        return out

    def export_arrays(self) -> dict[str, np.ndarray]:
        """The snapshot arrays :class:`botyard.models.tuned.TunedModel` reads: the trained layers and
        the heads (not the frozen part, which is the installed encoder's)."""
        out = {f"layer{i}/{part}": np.asarray(v.numpy(), np.float32)
               for i, layer in enumerate(self.body, self.frozen) for part, v in zip(PARTS, layer)}
        out.update({name: np.asarray(v.numpy(), np.float32) for name, v in zip(HEAD_ARRAYS, self.heads)})
        return out


def inputs_of(encoder: SentenceEncoder, utterances) -> dict[str, np.ndarray]:
    """Padded model inputs of tokenised utterances."""
    return padded([encoder.first_pieces(tokens) for tokens in utterances])


def padded(rows) -> dict[str, np.ndarray]:
    """Model inputs of ``(piece ids, first piece of each token)`` rows, padded to the longest."""
    n, w = max(len(ids) for ids, _ in rows), max(max(len(f) for _, f in rows), 1)
    ids, mask = np.zeros((len(rows), n), np.int32), np.zeros((len(rows), n), np.float32)
    first = np.zeros((len(rows), w), np.int32)
    for r, (piece_ids, firsts) in enumerate(rows):
        ids[r, : len(piece_ids)], mask[r, : len(piece_ids)], first[r, : len(firsts)] = piece_ids, 1.0, firsts
    return {"ids": ids, "mask": mask, "first": first}


def from_arrays(encoder: SentenceEncoder, model: Mapping, arrays: Mapping[str, np.ndarray]) -> TunedEncoder:
    """The Keras model of a snapshot's tuned arrays (to compare with the runtime)."""
    net = TunedEncoder(encoder, len(model["labels"]), len(model.get("tags", ())), layers=arrays,
                       frozen=int(model.get("frozen", 0)))
    for v, name in zip(net.heads, HEAD_ARRAYS):
        v.assign(np.asarray(arrays[name], np.float32))
    return net
