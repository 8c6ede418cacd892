"""Calibration: the thresholds below which a bot falls back, from held-out answers (issue 26).

Training answers every held-out example with a model that did not see it (:func:`evaluate`; :func:`botyard.training.
pipeline.train_dataset`: folds, or one held-out tenth), each answer a :class:`Scored`. The
confidence threshold (:func:`calibrate`) and the in-scope score's (:func:`calibrate_score`) are
chosen on the folds' answers together and drawn towards a prior as if the prior had been measured
on :data:`PRIOR_WEIGHT` answers (:func:`toward_prior`), so a 20-example bot gets a stable threshold
and a 15,000-example one its measured one; :func:`calibration_of` is what the manifest records.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, Sequence

from botyard.models import scope as in_scope
from botyard.models.definition import OUT_OF_SCOPE
from botyard.models.runtime import Predictor
from botyard.models.text import tag_spans
from botyard.training.config import TrainConfig
from botyard.training.dataset import Example


class Fitted(Protocol):
    """What calibration reads of a fold's training (:class:`botyard.training.pipeline.TrainResult`)."""

    manifest: dict[str, Any]
    metrics: dict[str, Any]
    scored: tuple
    counts: tuple


class Scored(NamedTuple):
    """One held-out answer, as calibration reads it."""

    correct: bool
    out_of_scope: bool
    """The example is one of the bot's out-of-scope examples."""
    predicted_out_of_scope: bool
    confidence: float
    score: float | None
    """The in-scope score (None: the model has none)."""
    knows_a_word: bool = True


PRIOR_WEIGHT = 20
"""Calibration draws a threshold towards its prior as if the prior had been measured on this many
correct held-out answers: with 4 answers it is mostly the prior, with 400 mostly the measurement."""
CONFIDENCE_PRIOR = 0.5
"""The confidence threshold of a bot with nothing held out."""


def toward_prior(measured: float | None, n: int, prior: float) -> tuple[float, float]:
    """``(threshold, the prior's weight)``: ``measured`` on ``n`` answers, drawn towards ``prior``."""
    if measured is None or n <= 0:
        return prior, 1.0
    w = PRIOR_WEIGHT / (n + PRIOR_WEIGHT)
    return round((1 - w) * measured + w * prior, 6), round(w, 4)


def calibration_of(fitted: Sequence[Fitted], config: TrainConfig, k: int, final: bool) -> dict[str, Any]:
    """The thresholds from the folds' held-out answers together, each fold's own, and how they were chosen."""
    scored = [s for r in fitted for s in r.scored]
    correct = sum(1 for s in scored if s.correct and not s.out_of_scope and s.knows_a_word)
    held_in_scope = any(not s.out_of_scope for s in scored)
    out: dict[str, Any] = {
        "method": "none" if not held_in_scope else f"{k}-fold" if k > 1 else "held-out",
        "folds": k,
        "held_out": len(scored),
        "correct": correct,
        "recall_target": config.recall_target,
        "final_fit": final,
    }
    parts = {"confidence": (lambda s: calibrate(s, config.recall_target), CONFIDENCE_PRIOR)}
    if any(s.score is not None for s in scored) or (
        fitted and fitted[0].manifest["model"].get("scope")
    ):
        parts["score"] = (lambda s: calibrate_score(s, config.recall_target), in_scope.PRIOR)
    for name, (rule, prior) in parts.items():
        pooled, weight = toward_prior(rule(scored) if held_in_scope else None, correct, prior)
        part = {"threshold": pooled, "prior": prior, "prior_weight": weight}
        per_fold = [rule(r.scored) for r in fitted if any(s.correct and not s.out_of_scope for s in r.scored)]
        per_fold = [round(t, 4) for t in per_fold if t is not None]
        if len(per_fold) > 1:  # each fold's own threshold, unpooled and without the prior: how much they agree
            part["per_fold"], part["spread"] = per_fold, round(max(per_fold) - min(per_fold), 4)
        out[name] = part
    return out


def held_out_metrics(fitted: Sequence[Fitted]) -> dict[str, Any]:
    """The held-out figures of the folds together: intent accuracy and entity F1 over every
    held-out example; a cascade's other figures (one fold) as its fold gave them."""
    rows = [r for r in fitted if r.counts]
    if not rows:
        return {}
    correct, tp, n_pred, n_gold, n = (sum(r.counts[i] for r in rows) for i in range(5))
    out: dict[str, Any] = {"validation_examples": n, "validation_accuracy": round(correct / n, 6)}
    if n_gold:
        precision, recall = (tp / n_pred if n_pred else 0.0), tp / n_gold
        out["validation_entity_f1"] = round(2 * precision * recall / (precision + recall) if tp else 0.0, 6)
    if len(rows) == 1:
        out.update({k: v for k, v in rows[0].metrics.items() if k.startswith("validation") and k not in out})
    return out


def calibrate(scored: Sequence[tuple[bool, bool, bool, float]], recall_target: float) -> float:
    """The confidence threshold below which the bot falls back to "I don't know".

    With out-of-scope validation examples: the threshold that answers the most
    validation utterances right (in scope: right intent above it; out of scope: below
    it or predicted out of scope), in the middle of the interval that does so. Without:
    the threshold that keeps ``recall_target`` of the correct in-scope answers. Clipped
    to [0.1, 0.9]; 0.5 without validation data.
    """
    scored = [tuple(s)[:4] for s in scored]  # (correct, out of scope, predicted out of scope, confidence)
    in_scope = sorted(c for ok, oos, _, c in scored if ok and not oos)
    if not in_scope:
        return 0.5
    if not any(oos for _, oos, _, _ in scored):
        k = int((1.0 - recall_target) * len(in_scope))
        return round(min(0.9, max(0.1, in_scope[k] - 1e-6)), 6)
    best, best_t, previous = -1, 0.5, 0.1
    candidates = sorted({0.1, *(round(c, 4) for *_, c in scored if 0.1 <= c <= 0.9)})
    for low, t in zip([0.1, *candidates], candidates):
        right = sum((ok and c >= t) if not oos else (pred_oos or c < t) for ok, oos, pred_oos, c in scored)
        if right > best:
            best, best_t, previous = right, t, low
    # Every threshold in (previous, best_t] scores the same: take the middle, away from both sides.
    return round((previous + best_t) / 2, 6) if previous < best_t else best_t


def calibrate_score(scored: Sequence[Scored], recall_target: float) -> float | None:
    """The in-scope score below which the bot falls back: the one that keeps ``recall_target``
    of the correct in-scope held-out answers (those not already falling back for having no
    known word). The bot's own out-of-scope examples do not move it: its out-of-scope class
    catches what they resemble, and a rule tuned to them pushed the confidence threshold to
    its floor (issue 26). None without any."""
    kept = sorted(s.score for s in scored
                  if s.correct and not s.out_of_scope and s.knows_a_word and s.score is not None)
    if not kept:
        return None
    return round(kept[int((1.0 - recall_target) * len(kept))] - 1e-6, 6)


def evaluate(predictor: Predictor, examples: Sequence[Example]) -> dict[str, Any]:
    """Intent accuracy, entity F1 (exact spans), each answer as calibration reads it
    (``scored``: :class:`Scored`) and the counts behind the figures (``counts``)."""
    correct, tp, n_pred, n_gold, scored = 0, 0, 0, 0, []
    for e in examples:
        label, confidence, tags, score, knows_a_word, _ = predictor.assess_tokens(e.tokens)
        correct += label == e.intent
        scored.append(Scored(label == e.intent, e.intent == OUT_OF_SCOPE, label == OUT_OF_SCOPE, confidence, score,
                             knows_a_word))
        gold, pred = set(tag_spans(list(e.tags))), set(tag_spans(tags))
        tp += len(gold & pred)
        n_pred += len(pred)
        n_gold += len(gold)
    out: dict[str, Any] = {"validation_accuracy": round(correct / len(examples), 6), "scored": scored,
                           "counts": (correct, tp, n_pred, n_gold, len(examples))}
    if n_gold:
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold
        out["validation_entity_f1"] = round(2 * precision * recall / (precision + recall) if tp else 0.0, 6)
    return out


__all__ = ["CONFIDENCE_PRIOR", "PRIOR_WEIGHT", "Fitted", "Scored", "calibrate", "calibrate_score", "calibration_of",
           "evaluate", "held_out_metrics", "toward_prior"]
