"""Dates: ``tomorrow``, ``next Friday``, ``Friday next week``, ``12 March``, ``2026-12-24``,
``24/12/2026``, ``on the 15th``, ``in 3 days``, ``3 days ago``, as ``"YYYY-MM-DD"``.

Relative dates count from the turn's day in the bot's time zone (:class:`.moment.Moment`).
A weekday alone or with ``next`` is the coming one (never today: ``on Wednesday`` said on a
Wednesday is a week later); with ``this``, today counts; with ``last``, the one before today;
``Friday next week`` is the Friday of the next week (weeks start on Monday). A day and month
without a year is the next such day from today on (``12 March`` said in December: next year);
``on the 15th``, the next 15th. ``03/04`` is read as the language's ``date_order`` says
(English: day first), unless only the other order is a date (``12/24``).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Iterator

from dateutil.relativedelta import relativedelta

from botyard.models.system.durations import DAY, MONTH, YEAR
from botyard.models.system.language import Language, group
from botyard.models.system.moment import Moment
from botyard.models.system.numbers import Found, one, read


def _found(d: date | None, m: re.Match) -> Iterator[Found]:
    if d is not None:
        yield d.isoformat(), m.start(), m.end()


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _upcoming(month: int, day: int, today: date) -> date | None:
    """The next ``day`` of ``month`` from ``today`` on (29 February: within 8 years)."""
    for year in range(today.year, today.year + 9):
        d = _date(year, month, day)
        if d is not None and d >= today:
            return d
    return None


def _day_number(text: str, lang: Language) -> int | None:
    """``15``, ``15th``, ``fifteenth``, ``twenty-first``."""
    digits = re.match(r"\d+", text)
    if digits:
        return int(digits.group())
    found = read(text, lang)
    return int(found[0][0]) if len(found) == 1 else None


def day(m: re.Match, lang: Language, text: str, ctx: Moment) -> Iterator[Found]:
    yield from _found(ctx.today + timedelta(days=lang.relative_days[lang.word(m.group("day_word"))]), m)


def weekday(m: re.Match, lang: Language, text: str, ctx: Moment) -> Iterator[Found]:
    wanted = lang.weekdays[lang.word(m.group("weekday"))]
    shift = lang.shifts.get(lang.word(group(m, "shift") or ""), "")
    today = ctx.today
    if group(m, "week"):
        monday = today - timedelta(days=today.weekday()) + timedelta(weeks=lang.week_shifts[lang.word(group(m, "week"))])
        d = monday + timedelta(days=wanted)
    elif shift == "last":
        d = today - timedelta(days=(today.weekday() - wanted) % 7 or 7)
    else:
        ahead = (wanted - today.weekday()) % 7
        d = today + timedelta(days=ahead or (0 if shift == "this" else 7))
    yield from _found(d, m)


def calendar(m: re.Match, lang: Language, text: str, ctx: Moment) -> Iterator[Found]:
    shift = group(m, "month_shift")
    if shift is not None:  # 다음 달 3일: the 3rd of next month
        number = _day_number(m.group("day"), lang)
        first = date(ctx.today.year, ctx.today.month, 1) + relativedelta(months=lang.month_shifts[lang.word(shift)])
        yield from _found(_date(first.year, first.month, number) if number is not None else None, m)
        return
    month_text = m.group("month")
    month = int(month_text) if month_text.isdigit() else lang.months.get(lang.word(month_text))
    number = _day_number(m.group("day"), lang)
    if month is None or number is None:
        return
    year = group(m, "year")
    if year and not year.isdigit():  # 이천이십육년
        spelled = one(year, lang)
        year = str(int(spelled)) if spelled is not None else None
        if year is None:
            return
    yield from _found(_date(int(year), month, number) if year else _upcoming(month, number, ctx.today), m)


def numeric(m: re.Match, lang: Language, text: str, ctx: Moment) -> Iterator[Found]:
    a, b = int(m.group("a")), int(m.group("b"))
    day_, month = (a, b) if lang.date_order == "dmy" else (b, a)
    if month > 12 and day_ <= 12:
        day_, month = month, day_
    year = group(m, "year")
    if year is None:
        yield from _found(_upcoming(month, day_, ctx.today), m)
    else:
        yield from _found(_date(int(year) + (2000 if len(year) == 2 else 0), month, day_), m)


def day_of_month(m: re.Match, lang: Language, text: str, ctx: Moment) -> Iterator[Found]:
    number = _day_number(m.group("day"), lang)
    if number is None:
        return
    today = ctx.today
    for ahead in range(13):
        first = date(today.year, today.month, 1) + relativedelta(months=ahead)
        d = _date(first.year, first.month, number)
        if d is not None and d >= today:
            yield from _found(d, m)
            return


def offset(m: re.Match, lang: Language, text: str, ctx: Moment) -> Iterator[Found]:
    count = one(m.group("n"), lang) if group(m, "n") else Decimal(1)  # 이틀 뒤: the unit is two days
    unit = lang.units.get(lang.word(m.group("unit")))
    sign = lang.directions.get(lang.word(m.group("direction")))
    if count is None or unit is None or sign is None or unit < DAY or count != count.to_integral_value():
        return
    n = int(count) * sign
    if unit == MONTH:
        step = relativedelta(months=n)
    elif unit == YEAR:
        step = relativedelta(years=n)
    else:
        step = timedelta(days=n * unit // DAY)
    yield from _found(ctx.today + step, m)
