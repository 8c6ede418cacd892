"""Training settings for a bot's language (:mod:`botyard.models.languages`).

A Korean bot's tokens add their morphemes, and it trains without the shared English word
vectors. The context tier, the cascade and the tuned cascade read every utterance with the
shared English sentence encoder: for a language it cannot read they would cost milliseconds
per turn and add nothing, so training refuses them before any work, saying why.
"""

from __future__ import annotations

from dataclasses import replace

from botyard.models.languages import LANGUAGES
from botyard.training.config import TrainConfig
from botyard.training.errors import TrainingError

ENGLISH_TIERS = ("context", "cascade", "tuned")
"""The settings that need the shared English sentence encoder."""


class LanguageNotServed(TrainingError):
    """A training setting asks for a model that cannot read the bot's language."""

    code = "language_not_served"


def for_language(language: str, config: TrainConfig) -> TrainConfig:
    """``config`` for a bot written in ``language``; a :class:`LanguageNotServed` for a tier
    that cannot read it."""
    lang = LANGUAGES[language]
    if not lang.english_models:
        chosen = [name for name in ENGLISH_TIERS if getattr(config, name)]
        if chosen:
            raise LanguageNotServed(
                f"--{chosen[0]} reads utterances with the shared sentence encoder (MiniLM), which reads English only: "
                f"it cannot serve a {lang.name} bot (language: {language}). Train the bag model (without --{chosen[0]}), "
                f"which reads {lang.name} morphemes and character n-grams.",
                setting=chosen[0], language=language,
            )
        config = replace(config, vectors=False)  # English word pieces: noise for this language
    return replace(config, features=lang.features(config.features))


__all__ = ["ENGLISH_TIERS", "LanguageNotServed", "for_language"]
