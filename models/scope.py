"""Is an utterance one of the bot's intents at all? The in-scope score (issue 26).

A softmax answers *which* intent, not *whether* any: an utterance about something the bot
was never taught still gets a confident intent (the median confidence of out-of-scope
utterances was 0.965 in the issue's benchmark). The bag model's sentence layer (the
hidden vector the intent head reads) places an utterance near the training examples it
resembles; how near its nearest example is says how familiar it is. The score:

    score = cos(u, the intent's nearest example) / reference[intent] + WEIGHT * confidence

- ``intent`` is the one the model picks; ``u`` is the utterance's sentence vector, projected
  on the training examples' first ``dim`` principal directions (64) and L2-normalised; the
  examples are kept the same way, grouped by intent, and an example within cosine 0.95 of one
  already kept for its intent is left out (:func:`condense`: about half of them). A turn
  compares ``u`` with its intent's examples only: one product of a few dozen rows (against
  every example, BANKING77's 4,000 kept rows cost 0.14 ms per turn, for the same figures).
- ``reference[intent]`` is the median, over the intent's training examples, of each one's
  cosine to its nearest *other* example of the intent: an intent whose examples are spread
  out gets a lower bar than one whose examples are near copies of each other.
- ``WEIGHT * confidence`` (0.1) adds what the softmax knows: on HWU64 with a quarter of
  the intents unknown it took the out-of-scope recall at in-scope accuracy within a point
  of the softmax's from 59 to 65 %.

Training calibrates the threshold below which the bot falls back (``low_score``); how it
was chosen and measured: docs/accuracy.md (Unknown intents). numpy only: the serving path
computes it per turn for about the cost of one more small layer.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

METHOD = "nearest-example-of-intent"
"""The score of :class:`Scope`. (``nearest-example``, for a few snapshots of one day: the nearest
example of any intent, with no ``scope/starts``; still served.)"""
DIM = 64
"""Principal directions kept (fewer when the bot has fewer examples or a narrower layer)."""
CONDENSE = 0.95
"""An example within this cosine of one already kept for its intent is not kept."""
WEIGHT = 0.1
"""The confidence's share of the score."""
PREFIX = "scope/"
"""Arrays of the score in a snapshot: ``scope/project``, ``scope/bank`` (the kept examples, by
intent), ``scope/starts`` (intent i's rows are ``starts[i]:starts[i + 1]``), ``scope/reference``."""
PRIOR = 0.9
"""The threshold a bot gets when it has (almost) no held-out examples to calibrate one on: a little
below the calibrated thresholds measured (bot20 0.93-0.96 over 5 seeds, BANKING77 and HWU64
1.00-1.02 with a quarter of their intents unknown; docs/accuracy.md): with little evidence, it
leans towards answering."""


def unit(x: np.ndarray) -> np.ndarray:
    """Rows (or a vector) scaled to length 1; zero rows stay zero."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, np.float32(1e-9))).astype(np.float32, copy=False)


def condense(z: np.ndarray, labels: np.ndarray, within: float = CONDENSE) -> np.ndarray:
    """Indices of the rows kept: per label, in order, a row whose cosine to every row already
    kept for the label is below ``within`` (rows of ``z`` have length 1)."""
    keep: list[int] = []
    for label in np.unique(labels):
        kept: list[int] = []
        bank = np.zeros((0, z.shape[1]), np.float32)
        for i in np.flatnonzero(labels == label):
            if not len(kept) or float((bank @ z[i]).max()) < within:
                kept.append(int(i))
                bank = z[kept]
        keep += kept
    return np.array(sorted(keep), np.int64)


def nearest_others(z: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Each row's largest cosine to another row (-1 for a lone row)."""
    out = np.full(len(z), -1.0, np.float32)
    for start in range(0, len(z), chunk):
        sims = z[start : start + chunk] @ z.T
        rows = np.arange(len(sims))
        sims[rows, start + rows] = -1.0
        if z.shape[0] > 1:
            out[start : start + chunk] = sims.max(axis=1)
    return out


def nearest_of_same(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each row's largest cosine to another row of its label (-1 for a label's lone row)."""
    out = np.full(len(z), -1.0, np.float32)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        out[idx] = nearest_others(z[idx])
    return out


def build(hidden: np.ndarray, labels: np.ndarray, n_labels: int, *, dim: int = DIM,
          within: float = CONDENSE) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The score's manifest part and arrays from the training examples' sentence vectors
    (``hidden``, one row each) and label indices. Labels without examples (out of scope:
    its examples never enter) get a reference of 1."""
    u = unit(np.asarray(hidden, np.float32))
    labels = np.asarray(labels, np.int64)
    dim = max(1, min(dim, u.shape[1], len(u) - 1))
    _, _, vt = np.linalg.svd(u - u.mean(axis=0), full_matrices=False)
    project = np.ascontiguousarray(vt[:dim].T.astype(np.float32))
    z = unit(u @ project)
    near = nearest_of_same(z, labels)
    spread = near[near > -1.0]
    overall = float(np.median(spread)) if len(spread) else 1.0
    reference = np.ones(n_labels, np.float32)
    for label in range(n_labels):
        mine = near[labels == label]
        if len(mine) >= 2:
            reference[label] = max(float(np.median(mine)), 1e-3)
        elif len(mine):  # one example: the bot's typical nearness
            reference[label] = max(overall, 1e-3)
    kept = condense(z, labels, within)
    kept = kept[np.argsort(labels[kept], kind="stable")]  # by intent
    starts = np.searchsorted(labels[kept], np.arange(n_labels + 1)).astype(np.int64)
    spec = {"method": METHOD, "dim": dim, "condense": within, "weight": WEIGHT, "examples": int(len(kept)),
            "threshold": None}
    arrays = {f"{PREFIX}project": project, f"{PREFIX}bank": np.ascontiguousarray(z[kept]),
              f"{PREFIX}starts": starts, f"{PREFIX}reference": reference}
    return spec, arrays


class Scope:
    """The in-scope score of one bag model (:func:`build`'s arrays)."""

    def __init__(self, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.project = np.asarray(arrays[f"{PREFIX}project"], np.float32)
        self.bank = np.ascontiguousarray(np.asarray(arrays[f"{PREFIX}bank"], np.float32))
        self.reference = np.asarray(arrays[f"{PREFIX}reference"], np.float32)
        starts = arrays.get(f"{PREFIX}starts")
        self.starts: list[int] | None = None if starts is None else [int(s) for s in starts]
        """Intent i's kept examples are ``bank[starts[i]:starts[i + 1]]`` (None: one bank for every intent)."""
        self.weight = np.float32(spec.get("weight", WEIGHT))
        threshold = spec.get("threshold")
        self.threshold: float | None = None if threshold is None else float(threshold)

    def score(self, sentence: np.ndarray, best: int, confidence: float) -> float:
        """One utterance's score from its sentence vector, best intent and confidence (what
        :meth:`scores` computes; the sentence's own length does not matter, the projection's does)."""
        rows = self.bank if self.starts is None else self.bank[self.starts[best] : self.starts[best + 1]]
        z = sentence @ self.project
        norm = math.sqrt(float(z @ z))
        nearest = float((rows @ z).max()) / norm if len(rows) and norm > 1e-9 else 0.0
        return nearest / float(self.reference[best]) + float(self.weight) * confidence

    def scores(self, sentences: np.ndarray, best: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """:meth:`score` of many utterances (rows)."""
        z = unit(np.asarray(sentences, np.float32) @ self.project)
        nearest = np.zeros(len(z), np.float32)
        if self.starts is None:
            if len(self.bank):
                nearest = (z @ self.bank.T).max(axis=1)
        else:
            for label in np.unique(best):
                rows = self.bank[self.starts[label] : self.starts[label + 1]]
                if len(rows):
                    mine = best == label
                    nearest[mine] = (z[mine] @ rows.T).max(axis=1)
        return nearest / self.reference[best] + self.weight * confidence


def arrays_of(arrays: Mapping[str, np.ndarray]) -> bool:
    """Whether a model's arrays hold a score."""
    return f"{PREFIX}bank" in arrays


__all__ = ["CONDENSE", "DIM", "METHOD", "PRIOR", "Scope", "WEIGHT", "build", "condense", "nearest_of_same",
           "nearest_others", "unit"]
