"""The languages system entities read, by a bot file's ``language`` (default ``en``)."""

from __future__ import annotations

from botyard.models.system import en, ko
from botyard.models.system.language import Language

LANGUAGES: dict[str, Language] = {"en": en.LANGUAGE, "ko": ko.LANGUAGE}
DEFAULT = "en"
