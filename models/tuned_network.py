"""The fine-tuned MiniLM in Keras (training only; serving runs :mod:`botyard.models.tuned`).

MiniLM-L6's six layers as trainable weights, initialised from the installed encoder
(:mod:`botyard.models.encoder`); its input embeddings as frozen weights; two linear heads::

    piece ids --embeddings (frozen)--> 6 x [attention, GELU MLP] --mean over pieces--> Dense  intent
                                                              \\--first piece of each token--> Dense  tag

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
                 layers: Mapping[str, np.ndarray] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dim, self.has_tags = encoder.dim, tags > 1

        def frozen(name: str, value: np.ndarray):
            v = self.add_weight(shape=value.shape, initializer="zeros", trainable=False, name=_name(name))
            v.assign(np.asarray(value, np.float32))
            return v

        self.word, self.position = frozen("word", encoder.word), frozen("position", encoder.position)
        self.type0 = frozen("type0", encoder.type0)
        self.norm0 = (frozen("norm0/gain", encoder.norm0[0]), frozen("norm0/bias", encoder.norm0[1]))
        start = dict(layers) if layers is not None else layer_arrays(encoder.layers)
        self.body = []
        """Per layer, its 12 weights in :data:`PARTS` order."""
        for i in range(len(encoder.layers)):
            self.body.append([])
            for part in PARTS:
                value = start[f"layer{i}/{part}"]
                v = self.add_weight(shape=value.shape, initializer="zeros", name=_name(f"layer{i}/{part}"))
                v.assign(np.asarray(value, np.float32))
                self.body[-1].append(v)
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

    def logits(self, inputs, training: bool = False):
        """Intent logits ``[batch, labels]`` and tag logits ``[batch, tokens, tags]`` (None without tags)."""
        ids, mask, first = inputs["ids"], inputs["mask"], inputs["first"]
        dim, width = self.dim, self.dim // HEADS
        b, n = ops.shape(ids)[0], ops.shape(ids)[1]
        x = ops.take(self.word, ids, axis=0) + self.position[:n] + self.type0
        x = self._norm(x, *self.norm0)
        masked = ops.expand_dims(ops.expand_dims((1.0 - mask) * -1e9, 1), 1)
        scale = 1.0 / math.sqrt(width)
        for qkv, qkv_b, out, out_b, g1, b1, up, up_b, down, down_b, g2, b2 in self.body:
            h = ops.transpose(ops.reshape(ops.matmul(x, qkv) + qkv_b, (b, n, 3, HEADS, width)), (2, 0, 3, 1, 4))
            scores = ops.softmax(ops.matmul(h[0], ops.transpose(h[1], (0, 1, 3, 2))) * scale + masked, axis=-1)
            context = ops.reshape(ops.transpose(ops.matmul(scores, h[2]), (0, 2, 1, 3)), (b, n, dim))
            x = self._norm(x + self.drop(ops.matmul(context, out) + out_b, training=training), g1, b1)
            u = ops.matmul(x, up) + up_b
            u = 0.5 * u * (1.0 + ops.erf(u * (1.0 / math.sqrt(2.0))))
            x = self._norm(x + self.drop(ops.matmul(u, down) + down_b, training=training), g2, b2)
        pooled = ops.sum(x * mask[..., None], axis=1) / ops.sum(mask, axis=1, keepdims=True)
        intent = ops.matmul(self.drop(pooled, training=training), self.w_int) + self.b_int
        if not self.has_tags:
            return intent, None
        words = ops.take_along_axis(self.drop(x, training=training), ops.expand_dims(first, -1), axis=1)
        return intent, ops.matmul(words, self.w_tag) + self.b_tag

    def call(self, inputs, training: bool = False):
        intent, tags = self.logits(inputs, training)
        out = {"intent": ops.softmax(intent, axis=-1)}
        if tags is not None:
            out["tags"] = ops.softmax(tags, axis=-1)
        return out

    def export_arrays(self) -> dict[str, np.ndarray]:
        """The snapshot arrays :class:`botyard.models.tuned.TunedModel` reads (not the frozen embeddings)."""
        out = {f"layer{i}/{part}": np.asarray(v.numpy(), np.float32)
               for i, layer in enumerate(self.body) for part, v in zip(PARTS, layer)}
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
    net = TunedEncoder(encoder, len(model["labels"]), len(model.get("tags", ())), layers=arrays)
    for v, name in zip(net.heads, HEAD_ARRAYS):
        v.assign(np.asarray(arrays[name], np.float32))
    return net
