"""Entity tags per token from the tag head's probabilities: the best path that obeys BIO.

``I-x`` may only follow ``B-x`` or ``I-x``, and never starts an utterance. Without more,
the best allowed path is the per-token best when that breaks no rule (almost always),
else Viterbi's. A snapshot may also carry a *tag prior* (``TrainConfig.transition_weight``,
lambda): the log-frequencies of first tags and of tag bigrams in the training examples, so
that a path scores ``sum_t log p_t(y_t) + lambda (log S(y_1) + sum_t log T(y_t-1, y_t))``.
The network judges each token with its neighbours; the prior adds how tags follow each
other (where a name ends, which slot follows which), which a per-token softmax leaves
out. That path is found by Viterbi over the few tags each token could plausibly take.
"""

from __future__ import annotations

import math
from array import array
from typing import Sequence

import numpy as np

MARGIN = 6.0
"""A tag more than this below a token's best (in log-probability) is left out of the prior's
search: on SNIPS valid the paths equal those of margin 8 and those of an exhaustive search."""




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
    """The path maximising ``sum log probs + start + moves`` (``start``/``move``: log scores, -inf forbids)."""
    best = probs.argmax(axis=1)
    # The constraints only forbid moves; if the per-token best path breaks none, it is the answer.
    if start[best[0]] == 0 and not (move[best[:-1], best[1:]] != 0).any():
        return best
    with np.errstate(divide="ignore"):
        logp = np.log(probs)
    score = logp[0] + start
    back = np.zeros(probs.shape, np.int64)
    into = np.ascontiguousarray(move.T)  # into[j, i]: the move from i to j, a row per target tag
    for t in range(1, len(probs)):
        cand = into + score
        back[t] = cand.argmax(axis=1)
        score = cand.max(axis=1) + logp[t]
    path = np.zeros(len(probs), np.int64)
    path[-1] = int(score.argmax())
    for t in range(len(probs) - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def tag_prior(sequences: Sequence[Sequence[int]], n_tags: int, weight: float) -> dict[str, np.ndarray]:
    """A snapshot's tag prior from the training examples' tag index sequences: ``decode/start``
    and ``decode/move``, the log-frequencies (add-one smoothed) of first tags and of each tag
    after each tag, times ``weight``."""
    starts = np.ones(n_tags)
    moves = np.ones((n_tags, n_tags))
    for seq in sequences:
        if len(seq):
            starts[seq[0]] += 1
            np.add.at(moves, (seq[:-1], seq[1:]), 1)
    return {
        "decode/start": (weight * np.log(starts / starts.sum())).astype(np.float32),
        "decode/move": (weight * np.log(moves / moves.sum(axis=1, keepdims=True))).astype(np.float32),
    }


class TagDecoder:
    """One snapshot's decoder: its tags' BIO rules and, if it has one, its tag prior."""

    def __init__(self, tags: Sequence[str], prior: dict[str, np.ndarray] | None = None) -> None:
        self.start, self.move = bio_constraints(tags)
        # The rules as Python lists: a short path is checked faster in Python than with numpy.
        self._inside = [t[2:] if t.startswith("I-") else None for t in tags]
        self._entity = [t[2:] for t in tags]
        self.prior = prior is not None
        if prior is not None:
            self.start = self.start + prior["decode/start"]
            self.move = self.move + prior["decode/move"]
            # Rows as float32 arrays (25 KB for 79 tags, where lists of Python floats took 200 KB).
            self._start, self._move = array("f", self.start), [array("f", row) for row in self.move]

    def decode(self, probs: np.ndarray, shifted: np.ndarray | None = None) -> list[int]:
        """Tag indices per token. ``shifted``: the tag logits minus each token's largest (the
        softmax's first step), which the prior's search uses as log-probabilities (a constant
        per token changes no path); without them it takes the logs of ``probs``."""
        if self.prior:
            if shifted is None:
                with np.errstate(divide="ignore"):
                    shifted = np.log(probs)
                shifted -= shifted.max(axis=1, keepdims=True)
            path = self._pruned(shifted)
            if path is not None:
                return path
            return viterbi(probs, self.start, self.move).tolist()
        best = probs.argmax(axis=1).tolist()
        if self._allowed(best):
            return best
        return viterbi(probs, self.start, self.move).tolist()

    def _allowed(self, path: list[int]) -> bool:
        """Whether a path keeps the BIO rules."""
        inside, entity = self._inside, self._entity
        return inside[path[0]] is None and all(inside[b] is None or entity[a] == inside[b] for a, b in zip(path, path[1:]))

    def _pruned(self, shifted: np.ndarray) -> list[int] | None:
        """Viterbi with the prior over the tags within :data:`MARGIN` of each token's best
        (``shifted``: log-probabilities minus each token's largest); None if no allowed path
        goes through them."""
        rows, cols = np.nonzero(shifted >= -MARGIN)
        if len(rows) == len(shifted):  # one plausible tag per token: the path if the rules allow it
            path = cols.tolist()
            return path if self._allowed(path) else None
        values = shifted[rows, cols].tolist()
        options: list[list[tuple[int, float]]] = [[] for _ in range(len(shifted))]
        for r, c, v in zip(rows.tolist(), cols.tolist(), values):
            options[r].append((c, v))
        start, move, neg = self._start, self._move, -math.inf
        score = {c: start[c] + v for c, v in options[0] if start[c] != neg}
        back = []
        for step in options[1:]:
            if len(score) == 1:  # one way to here: every option comes from it
                ((i, s),) = score.items()
                row = move[i]
                new = {c: s + row[c] + v for c, v in step if row[c] != neg}
                came = dict.fromkeys(new, i)
            else:
                new, came = {}, {}
                for c, v in step:
                    best, arg = neg, -1
                    for i, s in score.items():
                        x = s + move[i][c]
                        if x > best:
                            best, arg = x, i
                    if arg >= 0:
                        new[c], came[c] = best + v, arg
            if not new:
                return None
            score = new
            back.append(came)
        path = [max(score, key=score.__getitem__)]
        for came in reversed(back):
            path.append(came[path[-1]])
        path.reverse()
        return path
