"""What the runtime says of one utterance: a :class:`Prediction` (what a turn is answered with) and
an :class:`Assessment` (what evaluation and calibration read), and why a turn falls back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from botyard.models.entities import Entity


@dataclass(frozen=True, slots=True)
class Prediction:
    intent: str
    confidence: float
    entities: tuple[Entity, ...] = ()
    fallback: bool = False
    """True when the bot should say "I don't know": out of scope or below the threshold."""
    fallback_reason: str | None = None
    """Why it falls back (None when it does not): :data:`FALLBACK_REASONS`."""
    score: float | None = None
    """The in-scope score (:mod:`botyard.models.scope`; None for a snapshot without one)."""


FALLBACK_REASONS = ("out_of_scope_class", "no_known_word", "low_score", "low_confidence")
"""Why a turn falls back, in the order they are checked: the model's best label is the bot's
``out_of_scope`` examples; no word of the utterance is one the model was trained on; the
in-scope score is below the snapshot's calibrated threshold; the intent's confidence is below
the threshold (a snapshot without an in-scope score, or a bot file that fixes the threshold)."""


class Assessment(NamedTuple):
    """What :meth:`Predictor.assess_tokens` says of pre-tokenised words (evaluation, calibration)."""

    intent: str
    confidence: float
    tags: list[str]
    score: float | None
    knows_a_word: bool
    fallback_reason: str | None


__all__ = ["FALLBACK_REASONS", "Assessment", "Prediction"]
