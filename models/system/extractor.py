"""The system entities of one bot, found in each turn's text.

Cost on the turn path: a bot that declares none has no extractor at all. A bot that declares
some cuts the lower-cased text into tokens once (letters, digits, signs) and runs a kind's
patterns only where the text has the tokens the pattern needs (a digit, a number word, a
month and a day number, ``in`` and a unit of time, ...): most utterances have none and cost
that one ``findall``
(bench/entities.py measures it; docs/entities.md has the figures).

Within a kind, overlapping matches give way to the longest (``the day after tomorrow``, not
``tomorrow``). Across kinds, a match inside a longer match of another kind the bot declares
gives way (``30`` in ``30 euros`` is not a number when the bot declares money; ``3 days`` in
``in 3 days`` is not a duration when it declares dates).
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

from botyard.models.system import dates, durations, money, numbers, times
from botyard.models.system.kinds import TIMED_KINDS
from botyard.models.system.languages import DEFAULT, LANGUAGES
from botyard.models.system.moment import Moment

Resolver = Callable[..., Iterator[numbers.Found]]
RESOLVERS: dict[str, dict[str, Resolver]] = {
    "number": {"digits": numbers.number_digits, "spelled": numbers.number_spelled},
    "ordinal": {"digits": numbers.ordinal_digits, "spelled": numbers.ordinal_spelled},
    "money": {"amount": money.amount},
    "date": {"day": dates.day, "weekday": dates.weekday, "calendar": dates.calendar, "numeric": dates.numeric,
             "day_of_month": dates.day_of_month, "offset": dates.offset},
    "time": {"clock": times.clock, "named": times.named, "relative": times.relative, "offset": times.offset},
    "duration": {"duration": durations.duration},
}
"""Per kind, what each rule of a language's patterns means."""


class SystemEntities:
    """The extractors of the kinds one bot declares: ``(entity name, kind)`` pairs."""

    def __init__(self, declared: Iterable[tuple[str, str]], language: str = DEFAULT, timezone: str = "UTC") -> None:
        self.lang = LANGUAGES[language]
        self.zone = ZoneInfo(timezone)
        self.rules: list[tuple[str, Resolver, re.Pattern, tuple[frozenset[str], ...]]] = []
        """``(entity, resolver, pattern, the needs after the first)`` per rule of each declared kind."""
        self.by_token: dict[str, list[int]] = {}
        """The rules (indices in :attr:`rules`) whose first needs hold each token."""
        declared = list(declared)
        self.timed = any(kind in TIMED_KINDS for _, kind in declared)
        """Whether what it finds depends on the time (dates and times)."""
        for name, kind in declared:
            for rule, pattern, needs in self.lang.patterns(kind):
                for token in needs[0]:
                    self.by_token.setdefault(token, []).append(len(self.rules))
                self.rules.append((name, RESOLVERS[kind][rule], pattern, needs[1:]))

    def __bool__(self) -> bool:
        return bool(self.rules)

    def find(self, text: str, now: float | None = None) -> list[tuple[str, object, int, int]]:
        """``(entity, value, start, end)`` per system entity in ``text``, by ``start``;
        relative dates and times count from ``now`` (seconds since the epoch; default: now)."""
        tokens = set(self.lang.token_re.findall(text.lower()))
        started = tokens & self.by_token.keys()
        if not started:
            return []
        chosen = sorted({i for token in started for i in self.by_token[token]})
        moment = Moment(now, self.zone)
        candidates: dict[str, list[numbers.Found]] = {}
        for i in chosen:
            name, resolve, pattern, needs = self.rules[i]
            if needs and any(n.isdisjoint(tokens) for n in needs):
                continue
            for m in pattern.finditer(text):
                candidates.setdefault(name, []).extend(hit for hit in resolve(m, self.lang, text, moment) if hit[2] > hit[1])
        found = [(name, value, start, end) for name, hits in candidates.items() for value, start, end in _longest(hits)]
        if len(candidates) > 1:
            found = [f for f in found if not any(
                g[0] != f[0] and g[2] <= f[2] and f[3] <= g[3] and g[3] - g[2] > f[3] - f[2] for g in found
            )]
        found.sort(key=lambda f: (f[2], -f[3], f[0]))
        return found


def _longest(candidates: list[numbers.Found]) -> list[numbers.Found]:
    """The longest of overlapping matches (the earliest of equally long ones)."""
    if len(candidates) < 2:
        return candidates
    kept: list[numbers.Found] = []
    for c in sorted(candidates, key=lambda c: (c[1] - c[2], c[1])):
        if all(c[2] <= k[1] or c[1] >= k[2] for k in kept):
            kept.append(c)
    return kept
