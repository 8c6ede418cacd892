"""What a language gives the system entities: its words (tables) and its phrase patterns.

Everything language-specific is data in one module per language (:mod:`.en`); turning a
match into a value is shared (:mod:`.numbers`, :mod:`.dates`, ...). A pattern is a regular
expression whose named groups mean the same in every language:

=================  =====================================================================
rule (kind)        groups
=================  =====================================================================
digits (number)    the whole match is digits (``1,200``, ``-5``, ``3.5``), maybe a scale
spelled (number)   the whole match is spelled numbers, split into numbers (``two and three``)
digits (ordinal)   ``n``: digits (``2nd``)
spelled (ordinal)  ``prefix``: a spelled number before ``word``, an ordinal word
amount (money)     ``amount``, and ``currency``: a symbol, code or word of :attr:`currencies`
day (date)         ``day_word``: a word of :attr:`relative_days` (``tomorrow``)
weekday (date)     ``weekday``; ``shift`` (:attr:`shifts`); ``week`` (:attr:`week_shifts`)
calendar (date)    ``day`` (digits or an ordinal), ``month`` (a name or digits), ``year``;
                   or ``day`` and ``month_shift`` (:attr:`month_shifts`: 다음 달 3일)
numeric (date)     ``a``, ``b``: day and month in :attr:`date_order`; ``year``
day_of_month       ``day``: the next such day of a month
offset (date)      ``n``, ``unit``; ``direction`` (:attr:`directions`); without ``n``, one
                   ``unit`` (Korean 이틀 is a unit of two days)
clock (time)       ``hour``, ``minute``, ``meridiem``, ``part`` (:attr:`day_parts`)
named (time)       ``named``: a word of :attr:`named_times`
relative (time)    ``fraction`` (:attr:`fractions`) or ``minutes``; ``relation``; ``hour``, ...
offset (time)      ``duration``: a duration phrase; ``direction``
duration           the whole match, read part by part with :attr:`duration_part`
=================  =====================================================================

Korean (:mod:`.ko`) is the second: its words (일, 이, 삼 ... 만, 억; 하나, 둘 ...; 월요일 ...;
원) and patterns (``(?P<n>...)\\s?(?P<unit>일|주)\\s?(?P<direction>뒤|후)``), with the
few things English does not need as fields that default to off (:attr:`month_shifts`,
:attr:`scales_join`, a ``word`` that ignores spaces).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping


@dataclass(frozen=True)
class Language:
    code: str
    numbers: Mapping[str, int]
    """Spelled numbers that are not scales: ``one`` 1 ... ``twenty`` 20 ... ``ninety`` 90."""
    scales: Mapping[str, int]
    """Words that multiply what comes before them: ``hundred``, ``thousand``, ``dozen``."""
    articles: frozenset[str]
    """Words that are 1 before a scale only (``a hundred``)."""
    joiners: frozenset[str]
    """Words allowed between a scale and the rest of its number (``a hundred and twenty``)."""
    ordinals: Mapping[str, int]
    """Ordinal words: ``first`` 1, ``twentieth`` 20; those of :attr:`scales` multiply (``hundredth``)."""
    not_one_after: frozenset[str]
    """Words after which ``one`` is a pronoun, not a number (``which one``)."""
    months: Mapping[str, int]
    weekdays: Mapping[str, int]
    """Monday is 0."""
    relative_days: Mapping[str, int]
    """``today`` 0, ``tomorrow`` 1, ``the day after tomorrow`` 2, ``yesterday`` -1."""
    shifts: Mapping[str, str]
    """Words before a weekday: ``next``/``coming`` (the coming one), ``this`` (today counts), ``last``."""
    week_shifts: Mapping[str, int]
    """``next week`` 1, ``this week`` 0, ``last week`` -1."""
    directions: Mapping[str, int]
    """``in``/``from now``/``later`` 1, ``ago`` -1."""
    units: Mapping[str, int]
    """Seconds per unit of time word: ``minute`` 60, ``day`` 86400, ``month`` 30 days."""
    meridiem: Mapping[str, str]
    """``am`` or ``pm`` per spelling."""
    day_parts: Mapping[str, str]
    """``in the afternoon``: ``pm``."""
    named_times: Mapping[str, tuple[int, int]]
    fractions: Mapping[str, int]
    """Minutes per fraction of an hour: ``half`` 30, ``quarter`` 15."""
    relations: Mapping[str, int]
    """``past`` 1, ``to`` -1."""
    halves: frozenset[str]
    """Words of "and a half" (``half``)."""
    currencies: Mapping[str, str]
    """ISO 4217 code per symbol, code and word (``$``, ``usd``, ``dollars``), lower-cased."""
    date_order: str
    """``dmy`` or ``mdy``: how ``03/04`` reads when both numbers could be the month."""
    rules: Mapping[str, tuple[tuple[str, str, tuple[frozenset[str], ...]], ...]]
    """Per kind, ``(rule, pattern, needs)`` (rules: the table above). ``needs``: sets of tokens
    (of :attr:`token`, in the lower-cased text), one of each of which a text must have for
    the pattern to match at all: the pattern of ``in 3 days`` needs ``in`` and a unit of
    time. A text that has none of what a bot's rules need (most turns) costs one ``findall``."""
    duration_part: str
    """One part of a duration phrase: groups ``n``, ``unit``, ``half`` (a half more: ``an hour
    and a half``), ``half_of`` (``half an hour``), or ``hours`` and ``minutes`` (``1h30``)."""
    month_shifts: Mapping[str, int] = field(default_factory=dict)
    """Words before a day of the month naming its month: Korean ``다음 달`` 1, ``이번 달`` 0."""
    scales_join: bool = False
    """Whether a number goes on after a scale with digits (Korean ``1억 2천만``, ``3만 5천``)
    or a smaller scale alone (``이천십`` 2,010): English reads ``a thousand 5`` as two numbers."""
    token: str = r"[^\W\d_]+|\d|[^\w\s]"
    """What a token of ``needs`` is (default: a run of letters, one digit, one other sign)."""
    flags: int = re.IGNORECASE
    compiled: dict = field(default_factory=dict, compare=False, repr=False)

    def word(self, text: str) -> str:
        """How words are looked up in the tables: lower-cased, one space between words, no dots."""
        return " ".join(text.lower().replace(".", "").split())

    @cached_property
    def token_re(self) -> re.Pattern:
        return re.compile(self.token)

    @cached_property
    def number_token_re(self) -> re.Pattern:
        """A token of a number: digits, or a word of the number tables."""
        words = [*self.numbers, *self.scales, *self.articles, *self.joiners, *self.ordinals]
        return re.compile(rf"(?P<digits>-?\d[\d,.]*\d|-?\d)|(?P<word>{alternatives(words)})", self.flags)

    @cached_property
    def duration_part_re(self) -> re.Pattern:
        return re.compile(self.duration_part, self.flags)

    def patterns(self, kind: str) -> list[tuple[str, re.Pattern, tuple[frozenset[str], ...]]]:
        """The kind's rules, their patterns compiled once per process."""
        if kind not in self.compiled:
            self.compiled[kind] = [
                (rule, re.compile(pattern, self.flags), tuple(frozenset(n) for n in needs))
                for rule, pattern, needs in self.rules[kind]
            ]
        return self.compiled[kind]


def alternatives(words) -> str:
    """A regex alternation of phrases, longest first (a space in a phrase matches any spaces)."""
    ordered = sorted(set(words), key=lambda w: (-len(w), w))
    return "(?:" + "|".join(r"\s+".join(re.escape(part) for part in w.split()) for w in ordered) + ")"


def group(m: re.Match, name: str) -> str | None:
    """A named group's text; None when it did not match or the pattern has no such group
    (a language's patterns for one rule need not all have every group)."""
    return m.group(name) if name in m.re.groupindex else None
