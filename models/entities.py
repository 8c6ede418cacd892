"""Entities found in an utterance: by the model (learned), by lists of synonyms, by regex, by
the system entities' rules (numbers, money, dates, ...: :mod:`botyard.models.system`)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Iterable

from botyard.models import korean
from botyard.models.definition import DEFAULT_LANGUAGE, DEFAULT_TIMEZONE
from botyard.models.definition import Entity as EntityDef
from botyard.models.languages import LANGUAGES
from botyard.models.system.extractor import SystemEntities
from botyard.models.system.kinds import EXTRACTOR as SYSTEM


@dataclass(frozen=True, slots=True)
class Entity:
    entity: str
    value: str | int | float
    """The canonical value (list entities), the matched text (learned and regex entities), or
    the normalised value (system entities: ``42``, ``"30 EUR"``, ``"2026-12-11"``, ...)."""
    start: int
    end: int
    """Characters ``start:end`` of the utterance."""
    extractor: str
    """``model``, ``list``, ``regex`` or ``system``."""
    confidence: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


class Matchers:
    """The list, regex and system entities of one bot, compiled once per loaded snapshot;
    ``language`` and ``timezone`` are the bot's (what its system entities read and resolve in)."""

    def __init__(self, entities: Iterable[EntityDef], *, language: str = DEFAULT_LANGUAGE,
                 timezone: str = DEFAULT_TIMEZONE) -> None:
        entities = tuple(entities)
        self._compiled: list[tuple[str, str, re.Pattern, dict[str, str]]] = []
        self._cut = korean.at_cut if LANGUAGES[language].morphemes else None
        """Korean: a list value may end where a particle begins (부츠를 finds 부츠), or where the
        next word of an unspaced phrase does, at a cut between morphemes."""
        system = [(e.name, e.kind) for e in entities if e.type == "system"]
        self._system = SystemEntities(system, language, timezone) if system else None
        """None when the bot declares no system entity: its turns pay nothing for them."""
        for e in entities:
            if e.type == "regex":
                self._compiled.append((e.name, "regex", re.compile(e.pattern), {}))
            elif e.type == "list":
                canonical = {}
                for value, synonyms in e.values:
                    for phrase in (value, *synonyms):
                        canonical.setdefault(" ".join(phrase.lower().split()), value)
                # Longest phrases first so "hiking boots" wins over "boots".
                alternatives = sorted(canonical, key=lambda p: (-len(p), p))
                body = "|".join(r"\s+".join(map(re.escape, p.split())) for p in alternatives)
                edges = ("", "") if self._cut else (r"(?<!\w)", r"(?!\w)")  # cuts are checked on each match
                pattern = re.compile(rf"{edges[0]}(?:{body}){edges[1]}", re.IGNORECASE)
                self._compiled.append((e.name, "list", pattern, canonical))

    def __bool__(self) -> bool:
        return bool(self._compiled) or self._system is not None

    @property
    def timed(self) -> bool:
        """Whether what it finds depends on the time: the bot declares dates or times."""
        return self._system is not None and self._system.timed

    def find(self, text: str, now: float | None = None) -> list[Entity]:
        """The entities in ``text``; relative dates and times count from ``now`` (the turn's
        time, seconds since the epoch; default: the current time)."""
        found = []
        for name, kind, pattern, canonical in self._compiled:
            for m in pattern.finditer(text):
                if m.end() == m.start():
                    continue
                if kind == "list" and self._cut and not (self._cut(text, m.start()) and self._cut(text, m.end())):
                    continue
                value = canonical[" ".join(m.group().lower().split())] if kind == "list" else m.group()
                found.append(Entity(name, value, m.start(), m.end(), kind))
        if self._system is not None:
            found.extend(Entity(name, value, start, end, SYSTEM) for name, value, start, end in self._system.find(text, now))
        return found
