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
