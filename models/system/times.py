"""Times of day: ``at 3pm``, ``15:30``, ``noon``, ``half past four in the afternoon``,
``quarter to six pm``, ``at 8``, ``in two hours``, as ``"HH:MM"`` (24-hour clock).

An hour without am/pm or a part of the day is read as written (``at 8`` is 08:00, ``at 20``
is 20:00). ``in two hours`` counts from the turn's time in the bot's time zone; only hours,
minutes and seconds make a time (``in 3 days`` is a date).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Iterator

from botyard.models.system.durations import DAY, seconds
from botyard.models.system.language import Language, group
from botyard.models.system.moment import Moment
from botyard.models.system.numbers import Found, one


def _hour(text: str, lang: Language) -> int | None:
    if text.isdigit():
        return int(text)
    value = one(text, lang)
    return int(value) if value is not None else None


def _clock(hour: int | None, minute: int, half: str | None) -> tuple[int, int] | None:
    """``(hour, minute)`` on the 24-hour clock; ``half``: ``am``/``pm`` when said."""
    if hour is None or not 0 <= minute < 60 or not 0 <= hour < 24:
        return None
    if half is not None and 1 <= hour <= 12:
        hour = hour % 12 + (12 if half == "pm" else 0)
    elif half == "am" and hour > 12:
        return None
    return hour, minute


def _half(m: re.Match, lang: Language) -> str | None:
    """``am`` or ``pm`` when the match says which (``pm``, ``in the afternoon``)."""
    meridiem, part = group(m, "meridiem"), group(m, "part") or group(m, "part2")
    if meridiem:
        return lang.meridiem.get(lang.word(meridiem))
    return lang.day_parts.get(lang.word(part)) if part else None


def _found(hm: tuple[int, int] | None, m: re.Match) -> Iterator[Found]:
    if hm is not None:
        yield f"{hm[0]:02d}:{hm[1]:02d}", m.start(), m.end()


def clock(m: re.Match, lang: Language, text: str, ctx: Moment) -> Iterator[Found]:
    minute: int | None = int(group(m, "minute") or 0)
    if group(m, "minute_words"):  # "thirty", "oh five"
        value = one(m.group("minute_words"), lang)
        minute = int(value) if value is not None else None
    if minute is not None:
        yield from _found(_clock(_hour(m.group("hour"), lang), minute, _half(m, lang)), m)


def named(m: re.Match, lang: Language, text: str, ctx: Moment) -> Iterator[Found]:
    yield from _found(lang.named_times[lang.word(m.group("named"))], m)


def relative(m: re.Match, lang: Language, text: str, ctx: Moment) -> Iterator[Found]:
    """``half past four``, ``quarter to six pm``, ``ten past nine``."""
    if group(m, "fraction"):
        minutes = lang.fractions[lang.word(group(m, "fraction"))]
    else:
        value = one(m.group("minutes"), lang)
        if value is None or not 0 < value < 60 or value != value.to_integral_value():
            return
        minutes = int(value)
    base = _clock(_hour(m.group("hour"), lang), 0, _half(m, lang))
    if base is None:
        return
    total = (base[0] * 60 + lang.relations[lang.word(m.group("relation"))] * minutes) % (24 * 60)
    yield from _found(divmod(total, 60), m)


def offset(m: re.Match, lang: Language, text: str, ctx: Moment) -> Iterator[Found]:
    """``in two hours``, ``45 minutes from now``."""
    span = seconds(m.group("duration"), lang)
    sign = lang.directions.get(lang.word(m.group("direction")))
    if span is None or sign is None or span >= DAY or any(
        lang.units.get(lang.word(group(u, "unit") or group(u, "unit_of") or "h"), 0) >= DAY
        for u in lang.duration_part_re.finditer(m.group("duration"))
    ):
        return
    at = ctx.local + timedelta(seconds=sign * span)
    yield from _found((at.hour, at.minute), m)
