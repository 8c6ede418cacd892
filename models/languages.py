"""The languages a bot may be written in: the bot file's ``language:`` (default ``en``).

A language decides how the bag model reads a token (Korean adds its morphemes,
:mod:`botyard.models.korean`) and which of the shared English models can help: the word
vectors and the sentence encoder (MiniLM, behind ``--context``, ``--cascade`` and
``--tuned``) were trained on English, so a Korean bot trains without them and training
refuses those tiers for it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from botyard.models import korean
from botyard.models.featurizer import FeatureConfig

DEFAULT = "en"


@dataclass(frozen=True, slots=True)
class BotLanguage:
    code: str
    name: str
    morphemes: str = ""
    """The analyzer whose morphemes join each token's features (``FeatureConfig.morphemes``)."""
    english_models: bool = True
    """The shared word vectors and sentence encoder read this language."""

    def features(self, base: FeatureConfig) -> FeatureConfig:
        """``base`` for this language: Korean reads morphemes, how the utterance ends (its last
        three morphemes) and its length, and gives a token's shape (all Hangul is ``x``) less of
        its bag; settings already chosen for morphemes are kept."""
        if not self.morphemes or base.morphemes:
            return base
        return replace(base, morphemes=self.morphemes, shape_share=0.1, morph_share=0.3, ending=3, length=True)


LANGUAGES: dict[str, BotLanguage] = {
    "en": BotLanguage("en", "English"),
    "ko": BotLanguage("ko", "Korean", morphemes=korean.ANALYZER, english_models=False),
}

__all__ = ["DEFAULT", "LANGUAGES", "BotLanguage"]
