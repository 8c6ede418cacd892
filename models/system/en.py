r"""English: the words and phrase patterns of the system entities (see :mod:`.language`)."""

from __future__ import annotations

import re

from botyard.models.system.language import Language, alternatives

L, R = r"(?<!\w)", r"(?!\w)"
"""Every pattern stands between word boundaries."""

UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBERS = {w: i for i, w in enumerate(UNITS)} | {w: 20 + 10 * i for i, w in enumerate(TENS)}
SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12, "dozen": 12, "couple": 2}
ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9,
    "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14, "fifteenth": 15, "sixteenth": 16,
    "seventeenth": 17, "eighteenth": 18, "nineteenth": 19, "twentieth": 20, "thirtieth": 30, "fortieth": 40,
    "fiftieth": 50, "sixtieth": 60, "seventieth": 70, "eightieth": 80, "ninetieth": 90,
    "hundredth": 100, "thousandth": 1000, "millionth": 10**6,
}
NOT_ONE_AFTER = frozenset(
    "which this that the each every any no another other last next new old same right wrong little big only "
    "small large red blue black white green cheaper cheap better good bad".split()
) | frozenset(ORDINALS)
MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5,
    "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}
WEEKDAYS = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}
WEEKDAY_ABBREVIATIONS = {
    "mon": 0, "tue": 1, "tues": 1, "wed": 2, "thu": 3, "thur": 3, "thurs": 3, "fri": 4, "sat": 5, "sun": 6,
}
"""Only after a shift word (``next fri``): bare, ``sun``, ``sat`` and ``wed`` are other words."""
RELATIVE_DAYS = {
    "today": 0, "tonight": 0, "tomorrow": 1, "tmrw": 1, "yesterday": -1,
    "the day after tomorrow": 2, "the day before yesterday": -2,
}
SHIFTS = {"next": "next", "coming": "next", "this coming": "next", "this": "this", "last": "last", "past": "last"}
WEEK_SHIFTS = {"next": 1, "this": 0, "last": -1}
DIRECTIONS = {"in": 1, "from now": 1, "from today": 1, "later": 1, "after": 1, "ago": -1, "before": -1, "earlier": -1}
DAY = 86400
TIME_UNITS = {
    "second": 1, "seconds": 1, "sec": 1, "secs": 1,
    "minute": 60, "minutes": 60, "min": 60, "mins": 60,
    "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600, "h": 3600,
}
DATE_UNITS = {
    "day": DAY, "days": DAY, "week": 7 * DAY, "weeks": 7 * DAY, "wk": 7 * DAY, "wks": 7 * DAY,
    "fortnight": 14 * DAY, "fortnights": 14 * DAY, "month": 30 * DAY, "months": 30 * DAY,
    "year": 365 * DAY, "years": 365 * DAY, "yr": 365 * DAY, "yrs": 365 * DAY,
}
MERIDIEM = {"am": "am", "pm": "pm"}  # "a.m." is looked up without its dots
DAY_PARTS = {
    "in the morning": "am", "in the afternoon": "pm", "in the evening": "pm", "at night": "pm", "tonight": "pm",
    "this morning": "am", "this afternoon": "pm", "this evening": "pm",
}
NAMED_TIMES = {"noon": (12, 0), "midday": (12, 0), "midnight": (0, 0)}
FRACTIONS = {"half": 30, "quarter": 15, "a quarter": 15}
RELATIONS = {"past": 1, "after": 1, "to": -1, "before": -1, "till": -1, "til": -1}
CURRENCY_SYMBOLS = {"$": "USD", "us$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₩": "KRW", "₹": "INR", "₺": "TRY", "₽": "RUB"}
CURRENCY_CODES = (
    "EUR USD GBP JPY KRW CHF CNY CAD AUD NZD SEK NOK DKK PLN CZK HUF RON BGN INR BRL MXN ZAR SGD HKD THB "
    "ILS AED SAR RUB UAH ISK"
).split()
"""ISO 4217 codes read in capitals only (``EUR 7``); codes that are English words (ALL, TOP) left out."""
CURRENCY_WORDS = {
    "dollar": "USD", "dollars": "USD", "us dollars": "USD", "buck": "USD", "bucks": "USD",
    "canadian dollars": "CAD", "australian dollars": "AUD",
    "euro": "EUR", "euros": "EUR", "pound": "GBP", "pounds": "GBP", "quid": "GBP", "pounds sterling": "GBP",
    "yen": "JPY", "won": "KRW", "swiss francs": "CHF", "francs": "CHF", "franc": "CHF",
    "rupee": "INR", "rupees": "INR", "yuan": "CNY", "renminbi": "CNY",
}

# -------------------------------------------------------------------- phrase patterns
DIGITS = r"(?:(?<![\d.,])-)?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?)"
"""1,200 · 3.5 · 12,99 (a comma before anything but three digits is a decimal comma) · -5."""
SCALE = alternatives(k for k in SCALES if k not in ("dozen", "couple"))
WORD = alternatives([*NUMBERS, *SCALES]) + R
SPELLED = rf"(?:an?\s+(?={alternatives(SCALES)}{R}))?{WORD}(?:(?:\s+and\s+|[\s-]+){WORD})*"
"""A run of spelled numbers (``a hundred and twenty``, ``twenty-five``); :mod:`.numbers`
splits runs that are several numbers (``two and three``)."""
NUMBER = rf"(?:{DIGITS}(?:\s+{SCALE}{R})*|{SPELLED})"
ORDINAL_WORD = alternatives(ORDINALS).replace("second", r"(?<!\ba\s)(?<!\bone\s)(?<!\bper\s)second")
DAY_NUMBER = rf"(?:[0-3]?\d(?:st|nd|rd|th)?|(?:(?:twenty|thirty)[\s-]+)?{ORDINAL_WORD})"
DAY_ORDINAL = rf"(?:[0-3]?\d(?:st|nd|rd|th)|(?:(?:twenty|thirty)[\s-]+)?{ORDINAL_WORD})"
MONTH = alternatives(MONTHS) + r"\.?"
HOUR_WORD = alternatives(UNITS[1:13])
HOUR = rf"(?:[01]?\d|2[0-3]|{HOUR_WORD})"
DIGIT_WORD = alternatives(UNITS[1:10])
MINUTE_WORDS = rf"(?:o[h']?\s+{DIGIT_WORD}|{alternatives(TENS[:4])}(?:[\s-]+{DIGIT_WORD})?|{alternatives(UNITS[10:20])})"
"""Minutes spelled after an hour: ``oh five``, ``thirty``, ``forty-five``, ``fifteen``."""
MERIDIEM_RE = r"(?:[ap]\.?m\.?(?!\w)|[ap]m)"
PART = alternatives(DAY_PARTS)
COUNT = rf"(?:{NUMBER}|an?|(?:a\s+)?couple\s+of)"
NOT_A_SECOND = r"(?:(?<!\ba\ssecond)|(?=\s*$|\s*[^\w\s]|\s+(?:please|and|or|ago|later|now|to|for|then|before|after|more|longer|left)\b))"
"""``a second`` is a duration at the end of a phrase (``wait a second``), not before a noun (``a second card``)."""
UNIT = alternatives([*TIME_UNITS, *DATE_UNITS]) + NOT_A_SECOND
DURATION_PART = (
    rf"(?:(?P<hours>\d+)\s?h\s?(?P<minutes>[0-5]\d)(?:\s?m(?:in)?)?"
    rf"|(?P<half_of>half)\s+an?\s+(?P<unit_of>{UNIT})"
    rf"|(?P<n>{COUNT})(?:\s+and\s+a\s+(?P<half_n>half))?\s*(?P<unit>{UNIT})(?:\s+and\s+a\s+(?P<half>half))?){R}"
)
DURATION = (
    rf"(?:\d+\s?h\s?[0-5]\d(?:\s?m(?:in)?)?|half\s+an?\s+{UNIT}|{COUNT}(?:\s+and\s+a\s+half)?\s*{UNIT}(?:\s+and\s+a\s+half)?){R}"
)
DURATIONS = rf"{DURATION}(?:(?:,\s*|\s+and\s+|\s+){DURATION})*"
DATE_UNIT = alternatives(DATE_UNITS)
TIME_UNIT = alternatives(TIME_UNITS)
CURRENCY_SYMBOL = alternatives(CURRENCY_SYMBOLS)
CURRENCY_CODE = "(?-i:" + "|".join(CURRENCY_CODES) + ")"
CURRENCY_WORD = alternatives(CURRENCY_WORDS)
MONEY_AMOUNT = rf"(?:{DIGITS}(?:\s+{SCALE})?)"


def _tokens(*collections) -> frozenset[str]:
    """The trigger tokens of phrases: each of their words, digits and signs, lower-cased."""
    return frozenset(t for c in collections for phrase in c for t in re.findall(TOKEN, phrase.lower()))


def _last_words(phrases) -> frozenset[str]:
    """The last word of each phrase: a phrase is there only if its last word is."""
    return frozenset(p.split()[-1] for p in phrases)


TOKEN = r"[^\W\d_]+|\d|[^\w\s]"
D = frozenset("0123456789")
NUMBER_WORDS = _tokens(NUMBERS, SCALES)
HOUR_TOKENS = D | _tokens(UNITS[1:13])
ORDINAL_TOKENS = _tokens(ORDINALS)
TIME_UNIT_TOKENS = _tokens(TIME_UNITS)
DATE_UNIT_TOKENS = _tokens(DATE_UNITS)
SYMBOL_TOKENS = _tokens(CURRENCY_SYMBOLS)
PART_TOKENS = _last_words(DAY_PARTS)
CODE_TOKENS = _tokens(CURRENCY_CODES)
COUNT_TOKENS = D | NUMBER_WORDS | {"a", "an", "half", "couple"}

RULES = {  # kind: (rule, pattern, tokens the text must have: one of each set)
    "number": (
        ("digits", rf"(?<![\w.,:/$€£¥₩])(?<!\d-){DIGITS}(?:\s+{SCALE}{R})*(?![\w:/]|[.,/-]\d)", (D,)),
        ("spelled", rf"{L}{SPELLED}", (NUMBER_WORDS,)),
    ),
    "ordinal": (
        ("digits", rf"{L}(?P<n>\d+)(?:st|nd|rd|th){R}", (D, _tokens(["st", "nd", "rd", "th"]))),
        ("spelled", rf"{L}(?:(?P<prefix>{SPELLED})(?:\s+and\s+|[\s-]+))?(?P<word>{ORDINAL_WORD}){R}", (ORDINAL_TOKENS,)),
    ),
    "money": (
        ("amount", rf"(?<![\w.,])(?P<currency>{CURRENCY_SYMBOL})\s?(?P<amount>{MONEY_AMOUNT})(?!\w|[.,]\d)", (SYMBOL_TOKENS, D)),
        ("amount", rf"{L}(?P<currency>{CURRENCY_CODE})\s?(?P<amount>{MONEY_AMOUNT})(?!\w|[.,]\d)", (CODE_TOKENS, D)),
        ("amount", rf"{L}(?P<amount>{NUMBER})\s?(?P<currency>{CURRENCY_SYMBOL})", (SYMBOL_TOKENS,)),
        ("amount", rf"{L}(?P<amount>{NUMBER})\s?(?P<currency>{CURRENCY_CODE}){R}", (CODE_TOKENS,)),
        ("amount", rf"{L}(?P<amount>{NUMBER})\s+(?P<currency>{CURRENCY_WORD}){R}", (_last_words(CURRENCY_WORDS), COUNT_TOKENS)),
    ),
    "date": (
        ("day", rf"{L}(?P<day_word>{alternatives(RELATIVE_DAYS)}){R}", (_last_words(RELATIVE_DAYS),)),
        ("weekday", rf"{L}(?:(?P<shift>{alternatives(SHIFTS)})\s+)?(?P<weekday>{alternatives(WEEKDAYS)})"
                    rf"(?:\s+(?P<week>next|last|this)\s+week)?{R}", (_tokens(WEEKDAYS),)),
        ("weekday", rf"{L}(?P<shift>{alternatives(SHIFTS)})\s+(?P<weekday>{alternatives(WEEKDAY_ABBREVIATIONS)})\.?(?!\w)",
         (_tokens(WEEKDAY_ABBREVIATIONS), _tokens(SHIFTS))),
        ("calendar", rf"{L}(?P<day>{DAY_NUMBER})(?:\s+of)?\s+(?P<month>{MONTH})(?:,?\s+(?P<year>\d{{4}}))?{R}",
         (_tokens(MONTHS), D | ORDINAL_TOKENS)),
        ("calendar", rf"{L}(?P<month>{MONTH})\s+(?:the\s+)?(?P<day>{DAY_NUMBER})(?!\s*(?:[:.]\d|{MERIDIEM_RE}))"
                     rf"(?:,?\s+(?P<year>\d{{4}}))?{R}", (_tokens(MONTHS), D | ORDINAL_TOKENS)),
        ("calendar", rf"{L}(?P<year>\d{{4}})-(?P<month>[01]?\d)-(?P<day>[0-3]?\d){R}", (D, {"-"})),
        ("numeric", rf"{L}(?P<a>[0-3]?\d)/(?P<b>[0-3]?\d)(?:/(?P<year>\d{{4}}|\d\d))?(?![\w/])", (D, {"/"})),
        ("numeric", rf"{L}(?P<a>[0-3]?\d)([.-])(?P<b>[0-3]?\d)\2(?P<year>\d{{4}}){R}", (D, {".", "-"})),
        ("day_of_month", rf"(?:(?<=\bon\s)|(?<=\bby\s)|(?<=\buntil\s)|(?<=\bfrom\s))the\s+(?P<day>{DAY_ORDINAL})(?!\s+of\b){R}",
         ({"on", "by", "until", "from"}, D | ORDINAL_TOKENS)),
        ("offset", rf"{L}(?P<direction>in)\s+(?P<n>{COUNT})\s+(?P<unit>{DATE_UNIT}){R}", ({"in"}, DATE_UNIT_TOKENS, COUNT_TOKENS)),
        ("offset", rf"{L}(?P<n>{COUNT})\s+(?P<unit>{DATE_UNIT})\s+(?P<direction>ago|from\s+now|from\s+today|later|earlier){R}",
         (DATE_UNIT_TOKENS, {"ago", "from", "later", "earlier"}, COUNT_TOKENS)),
    ),
    "time": (
        ("clock", rf"{L}(?P<hour>[01]?\d|2[0-3])(?:[:.](?P<minute>[0-5]\d))?\s*(?P<meridiem>{MERIDIEM_RE})"
                  rf"(?:\s+(?P<part>{PART}))?(?!\w)", (D, {"am", "pm", "a", "p"})),
        ("clock", rf"{L}(?P<hour>{HOUR_WORD})(?:\s+(?P<minute_words>{MINUTE_WORDS}))?\s*(?:(?P<meridiem>{MERIDIEM_RE})(?!\s+i\b)"
                  rf"(?:\s+(?P<part>{PART}))?|\s+(?P<part2>{PART})){R}", (HOUR_TOKENS, {"am", "pm", "a", "p"} | PART_TOKENS)),
        ("clock", rf"{L}at\s+(?P<hour>{HOUR_WORD})\s+(?P<minute_words>{MINUTE_WORDS}){R}(?!\s*{MERIDIEM_RE}|\s+{PART})",
         ({"at"}, HOUR_TOKENS)),
        ("clock", rf"{L}(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)(?:\s+(?P<part>{PART}))?(?![\w:])", (D, {":"})),
        ("clock", rf"{L}(?P<hour>{HOUR})\s+o'?clock(?:\s+(?P<meridiem>{MERIDIEM_RE})|\s+(?P<part>{PART}))?(?!\w)",
         ({"clock", "oclock"},)),
        ("clock", rf"{L}at\s+(?P<hour>{HOUR})(?![\w:.]|\s*{MERIDIEM_RE}|\s+o'?clock)(?:\s+(?P<part>{PART}){R})?",
         ({"at"}, HOUR_TOKENS)),
        ("named", rf"{L}(?P<named>{alternatives(NAMED_TIMES)}){R}", (_tokens(NAMED_TIMES),)),
        ("relative", rf"{L}(?:(?P<fraction>{alternatives(FRACTIONS)})|(?P<minutes>{NUMBER})(?:\s+minutes?)?)\s+"
                     rf"(?P<relation>{alternatives(RELATIONS)})\s+(?P<hour>{HOUR})"
                     rf"(?:\s+(?P<meridiem>{MERIDIEM_RE})|\s+(?P<part>{PART}))?(?!\w)", (_tokens(RELATIONS), HOUR_TOKENS)),
        ("offset", rf"{L}(?P<direction>in)\s+(?P<duration>{DURATIONS})", ({"in"}, TIME_UNIT_TOKENS, COUNT_TOKENS)),
        ("offset", rf"{L}(?P<duration>{DURATIONS})\s+(?P<direction>from\s+now|later){R}",
         (TIME_UNIT_TOKENS, {"from", "later"}, COUNT_TOKENS)),
    ),
    "duration": (("duration", rf"{L}{DURATIONS}", (TIME_UNIT_TOKENS | DATE_UNIT_TOKENS, COUNT_TOKENS)),),
}


LANGUAGE = Language(
    code="en",
    numbers=NUMBERS,
    scales=SCALES,
    articles=frozenset({"a", "an"}),
    joiners=frozenset({"and"}),
    ordinals=ORDINALS,
    not_one_after=NOT_ONE_AFTER,
    months=MONTHS,
    weekdays=WEEKDAYS | WEEKDAY_ABBREVIATIONS,
    relative_days=RELATIVE_DAYS,
    shifts=SHIFTS,
    week_shifts=WEEK_SHIFTS,
    directions=DIRECTIONS,
    units=TIME_UNITS | DATE_UNITS,
    meridiem=MERIDIEM,
    day_parts=DAY_PARTS,
    named_times=NAMED_TIMES,
    fractions=FRACTIONS,
    relations=RELATIONS,
    halves=frozenset({"half"}),
    currencies=CURRENCY_SYMBOLS | {c.lower(): c for c in CURRENCY_CODES} | CURRENCY_WORDS,
    date_order="dmy",
    rules=RULES,
    duration_part=DURATION_PART,
    token=TOKEN,
)
