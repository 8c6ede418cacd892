"""The languages system entities read, by a bot file's ``language`` (default ``en``)."""

from __future__ import annotations

from botyard.models.system import en
from botyard.models.system.language import Language

LANGUAGES: dict[str, Language] = {"en": en.LANGUAGE}
DEFAULT = "en"
