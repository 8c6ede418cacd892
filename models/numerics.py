"""The numeric steps the numpy runtimes share (one utterance, batched, tuned): in place where they can be."""

from __future__ import annotations

import numpy as np


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0, out=x)


def softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


def softmax_shifted(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The softmax and its first step, ``x`` minus its largest per row (what decoding takes)."""
    shifted = x - x.max(axis=-1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=-1, keepdims=True)
    return probs, shifted


def shifted_sum(z: np.ndarray, n: int, width: int, filters: int) -> np.ndarray:
    """``out[t] = sum_k z[t + k, k*filters:(k+1)*filters]`` for ``t < n``: a strided view, one sum.

    With ``z`` holding every token's product with each of a ``Conv1D(padding="same")``
    kernel's slots (zero rows padding both ends), this is the convolution without bias."""
    step = z.strides[0]
    view = np.ndarray((n, width, filters), np.float32, z, 0, (step, step + filters * z.itemsize, z.itemsize))
    return view.sum(axis=1)


def flat_conv(kernel: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """A Keras ``Conv1D`` kernel ``[width, input, filters]`` as ``([input, width * filters], bias, width)``.

    The flat kernel is the transpose of a C-contiguous ``[width * filters, input]`` array: the
    runtime computes a convolution's products as ``(flat.T @ x.T).T``, which OpenBLAS does in
    two thirds of the time of ``x @ flat`` for an utterance's few tokens (9 x 64 by 64 x 320:
    7 against 11 us)."""
    width, d, filters = kernel.shape
    return np.ascontiguousarray(kernel.transpose(0, 2, 1).reshape(width * filters, d)).T, bias, width


HALF_TO_FLOAT = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
"""Every float16 value by its bits, as float32 (256 KB per process): looking rows of a float16
table up here takes half the time of numpy's ``astype`` (40 rows of 128: 6 against 13 us)."""


def blended(own: tuple, second: tuple, weight: float) -> tuple:
    """``(1 - weight) * own + weight * second`` of two models' :meth:`botyard.models.runtime.Predictor._outputs` (intent
    and tag probabilities, the tags' log-probabilities minus each token's largest); whether the
    utterance has a known word is the first model's to say (and its in-scope score, which
    :meth:`botyard.models.runtime.Predictor._outputs` adds)."""
    w = np.float32(weight)
    intent = (1 - w) * own[0] + w * second[0]
    if own[1] is None or second[1] is None:
        return intent, None, None, own[3]
    tags = (1 - w) * own[1] + w * second[1]
    with np.errstate(divide="ignore"):
        shifted = np.log(tags)
    return intent, tags, shifted - shifted.max(axis=-1, keepdims=True), own[3]
