"""Entities found in an utterance: by the model (learned), by lists of synonyms, by regex."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Iterable

from botyard.models.definition import Entity as EntityDef


@dataclass(frozen=True, slots=True)
class Entity:
    entity: str
    value: str
    """The canonical value (list entities) or the matched text."""
    start: int
    end: int
    """Characters ``start:end`` of the utterance."""
    extractor: str
    """``model``, ``list`` or ``regex``."""
    confidence: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


class Matchers:
    """The list and regex entities of one bot, compiled once per loaded snapshot."""

    def __init__(self, entities: Iterable[EntityDef]) -> None:
        self._compiled: list[tuple[str, str, re.Pattern, dict[str, str]]] = []
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
                pattern = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)
                self._compiled.append((e.name, "list", pattern, canonical))

    def __bool__(self) -> bool:
        return bool(self._compiled)

    def find(self, text: str) -> list[Entity]:
        found = []
        for name, kind, pattern, canonical in self._compiled:
            for m in pattern.finditer(text):
                if m.end() == m.start():
                    continue
                value = canonical[" ".join(m.group().lower().split())] if kind == "list" else m.group()
                found.append(Entity(name, value, m.start(), m.end(), kind))
        return found
