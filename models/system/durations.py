"""Durations: ``90 minutes``, ``two weeks``, ``an hour and a half``, ``1h30``, in seconds.

A month counts 30 days and a year 365 (as :data:`MONTH` and :data:`YEAR`): a duration is a
length of time, not a span of the calendar (``in 3 months`` as a date does use the calendar).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Iterator

from botyard.models.system.language import Language, group
from botyard.models.system.numbers import Found, one

DAY = 86400
MONTH = 30 * DAY
YEAR = 365 * DAY


def seconds(text: str, lang: Language) -> int | None:
    """The seconds a duration phrase adds up to (``2 hours and 30 minutes``: 9000)."""
    total = Decimal(0)
    for m in lang.duration_part_re.finditer(text):
        if group(m, "hours"):
            total += int(m.group("hours")) * 3600 + int(m.group("minutes")) * 60
        elif group(m, "half_of"):
            total += Decimal(lang.units[lang.word(m.group("unit_of"))]) / 2
        else:
            count = one(m.group("n"), lang) if group(m, "n") else Decimal(1)  # 이틀: the unit is two days
            if count is None:
                return None
            if group(m, "half_n") or group(m, "half"):
                count += Decimal("0.5")
            total += count * lang.units[lang.word(m.group("unit"))]
    return int(total.to_integral_value()) if total > 0 else None


def duration(m: re.Match, lang: Language, text: str, ctx) -> Iterator[Found]:
    value = seconds(m.group(), lang)
    if value is not None:
        yield value, m.start(), m.end()
