r"""Korean: the words and phrase patterns of the system entities (see :mod:`.language`).

Korean attaches particles and endings to the word they follow (금요일에, 3만원이요, 내일까지,
오후3시쯤) and writers space freely (다음주 금요일 / 다음 주 금요일), so every pattern ends
where the text goes on with a particle (:data:`PARTICLES`) or with no Hangul at all, a space
may or may not stand between the parts of a phrase, and the tables ignore spaces
(:class:`Korean`). A span never takes the particle: it is what the user wrote of the phrase.

Single Sino-Korean syllables are the false alarm to avoid: 이 (this; the subject particle),
일 (work, day), 사 (buy), 오 (come), 구 (district), 만 (only), 천 (cloth). So a spelled number
is a number only when it cannot be a word: three Sino-Korean syllables or more with a scale
(이십오, 삼천오백만), a tens (오십), or a number before a counter (이만 원, 스무 살, 세 개);
a single syllable only before a counter it cannot be a word with (일 년, 삼 층). Native
numbers stand alone (하나, 둘, 스물) but their attributive forms (한, 두, 세, 네, 스무) need a
counter, and ``하나요`` (an ending: 영업 하나요?), ``한번`` (an adverb), ``열`` (fever, open) and
``쉰`` are no number alone. Regular expressions rather than Kiwi's analysis: docs/entities.md.
"""

from __future__ import annotations

import re

from botyard.models.system.en import CURRENCY_SYMBOLS, DIGITS
from botyard.models.system.language import Language


class Korean(Language):
    def word(self, text: str) -> str:
        """Tables are looked up without spaces: 다음 주 and 다음주 are one word."""
        return "".join(text.lower().replace(".", "").split())


def alt(words) -> str:
    """An alternation of words, longest first; a space in a word may be left out or doubled."""
    ordered = sorted(set(words), key=lambda w: (-len(w), w))
    return "(?:" + "|".join(r"\s*".join(re.escape(part) for part in w.split()) for w in ordered) + ")"


def spaceless(table: dict) -> dict:
    """A table keyed as :meth:`Korean.word` looks words up: without their spaces."""
    return {k.replace(" ", ""): v for k, v in table.items()}


def first(words) -> frozenset[str]:
    return frozenset(w.replace(" ", "")[0] for w in words)


def last(words) -> frozenset[str]:
    return frozenset(w.replace(" ", "")[-1] for w in words)


# ---------------------------------------------------------------------------- word tables
SINO = dict(zip("일이삼사오육칠팔구", range(1, 10)))
SCALES = {"십": 10, "백": 100, "천": 1000, "만": 10**4, "억": 10**8, "조": 10**12}
CARDINAL_UNITS = ["하나", "둘", "셋", "넷", "다섯", "여섯", "일곱", "여덟", "아홉"]
ATTRIBUTIVE_UNITS = ["한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉"]
NATIVE_TENS = {"스물": 20, "서른": 30, "마흔": 40, "쉰": 50, "예순": 60, "일흔": 70, "여든": 80, "아흔": 90}
NUMBERS = (
    SINO | NATIVE_TENS | {"열": 10, "스무": 20}
    | {w: i for i, w in enumerate(CARDINAL_UNITS, 1)} | {w: i for i, w in enumerate(ATTRIBUTIVE_UNITS, 1)}
    | {"열" + w: 10 + i for i, w in enumerate(CARDINAL_UNITS, 1)} | {"열" + w: 10 + i for i, w in enumerate(ATTRIBUTIVE_UNITS, 1)}
)
"""열 takes its units as a table (열한 11): the shared reader lets only 20-90 take units."""
ORDINAL_WORDS = {"첫째": 1, "둘째": 2, "셋째": 3, "넷째": 4, "다섯째": 5, "여섯째": 6, "일곱째": 7, "여덟째": 8,
                 "아홉째": 9, "열째": 10}
ORDINALS = ORDINAL_WORDS | {"첫": 1}
MONTHS = dict(zip("일이삼사오유칠팔구시", range(1, 11))) | {"육": 6, "십": 10, "십일": 11, "십이": 12}
"""Spelled months before 월 (칠월, 유월, 시월, 십이월)."""
WEEKDAYS = {d + "요일": i for i, d in enumerate("월화수목금토일")} | {d + "욜": i for i, d in enumerate("월화수목금토일")}
RELATIVE_DAYS = {"오늘": 0, "내일": 1, "모레": 2, "내일모레": 2, "글피": 3, "어제": -1, "그제": -2, "그저께": -2}
SHIFTS = {"다음": "next", "오는": "next", "이번": "this", "지난": "last", "저번": "last"}
WEEK_SHIFTS = {"다음 주": 1, "담주": 1, "다다음 주": 2, "이번 주": 0, "금주": 0, "지난 주": -1, "저번 주": -1}
MONTH_SHIFTS = {"다음 달": 1, "담달": 1, "이번 달": 0, "지난 달": -1, "저번 달": -1}
DIRECTIONS = {"뒤": 1, "후": 1, "이후": 1, "있다가": 1, "이따": 1, "이따가": 1, "전": -1, "이전": -1}
DAY = 86400
TIME_UNITS = {"초": 1, "분": 60, "시간": 3600}
DATE_UNITS = {"일": DAY, "주": 7 * DAY, "주일": 7 * DAY, "개월": 30 * DAY, "달": 30 * DAY, "년": 365 * DAY}
DAY_WORDS = {"하루": DAY, "이틀": 2 * DAY, "사흘": 3 * DAY, "나흘": 4 * DAY, "닷새": 5 * DAY, "엿새": 6 * DAY,
             "열흘": 10 * DAY, "일주일": 7 * DAY}
"""Counts of days in one word (이틀 뒤): a unit without a number before it."""
DAY_PARTS = {"오전": "am", "오후": "pm", "아침": "am", "새벽": "am", "낮": "pm", "점심": "pm", "저녁": "pm", "밤": "pm"}
NAMED_TIMES = {"정오": (12, 0), "자정": (0, 0), "밤 12시": (0, 0), "밤 열두 시": (0, 0)}
CURRENCY_WORDS = {"원": "KRW", "달러": "USD", "불": "USD", "유로": "EUR", "엔": "JPY", "위안": "CNY", "파운드": "GBP"}
CURRENCY_CODES = ["KRW", "USD", "EUR", "JPY", "CNY", "GBP"]
NATIVE_COUNTERS = ["개", "명", "분", "살", "시", "시간", "번", "잔", "병", "권", "장", "대", "벌", "켤레", "마리", "달", "주",
                   "주일", "개월", "가지", "군데", "곳", "박스", "상자", "통", "봉지", "팩", "송이", "그릇", "세트", "판",
                   "줄", "쌍"]
SINO_COUNTERS = ["원", "달러", "불", "유로", "엔", "위안", "명", "개", "분", "초", "시간", "일", "주일", "주", "개월", "년",
                 "층", "호", "번", "인분", "퍼센트", "프로", "킬로", "그램", "미터", "센티", "회", "세", "권", "장", "대",
                 "평", "학년", "호선"]
SAFE_COUNTERS = ["개월", "년", "층", "인분", "학년", "퍼센트", "호선"]
"""The counters after which even one Sino-Korean syllable is a number (일 년, 삼 층): 일 일,
사 주, 오 시, 구 분 are 일일, 사 주세요, 오시다, 구분 too often."""
PARTICLES = [
    "이", "가", "을", "를", "은(?!행)", "는", "에", "의", "도", "만", "로", "으로", "와", "과", "랑", "하고", "까지", "부터",
    "보다", "처럼", "마다", "씩", "쯤", "께", "경", "요", "예요", "나", "면", "인데", "인가", "인지", "일까", "입니",
    "라", "밖에", "뿐", "정도", "동안", "간", "안에", "내에", "짜리", "어치", "가량", "넘", "전", "후", "뒤", "엔", "였",
    "지", "죠", "네", "든", "니", "래",
]
"""What may follow a phrase directly (spaced or not, anything not Hangul may): particles, the
copula's forms, and postpositions (쯤, 정도, 뒤). 하나은행 is a bank, not one."""

# ---------------------------------------------------------------------------- building blocks
H = "가-힣"
L = r"(?<!\w)"
LD = r"(?<![\d.,A-Za-z])(?<!\d-)"
"""Before digits: Hangul may touch them (금액3만원, 4821377번)."""
R = rf"(?:(?![{H}])|(?={'|'.join(PARTICLES)}))"
R_DAY = rf"(?:{R}|(?=날))"
"""After a date: also 금요일날."""
R_ORD = rf"(?:{R}|(?=거|꺼|것))"
"""After an ordinal: also 두번째꺼."""
D1 = "[일이삼사오육칠팔구]"
SINO_SYLLABLE = "[일이삼사오육칠팔구십백천만억조]"
LAST = rf"(?:이(?![{H}])|이(?=\s?{alt(SINO_COUNTERS)})|[일삼사오육칠팔구])"
"""A last digit; 이 before a Hangul syllable is the copula (오천이에요: 5,000, not 5,002)."""


def _group(last: str) -> str:
    """1 to 9,999 (삼천오백, 이십오, 십), never empty; ``last``: its last digit."""
    tens = rf"(?:{D1}?십{last}?|{last})"
    return rf"(?:{D1}?천(?:{D1}?백)?{tens}?|{D1}?백{tens}?|{tens})"


GROUP = _group(LAST)
MYRIADS = "".join(rf"(?:{_group(D1)}?{m}(?:\s(?={D1}|[십백천만억]))?)?" for m in "조억만")
SINO_NUMBER = rf"(?:{MYRIADS}{GROUP}?)"
"""Myriads from the largest (1조 2억 3만: 조, 억, 만, then a group), a space allowed between them."""
SCALED_ANY = rf"(?={D1}?[십백천만억조])(?!만일){SINO_NUMBER}"
"""A Sino-Korean number with a scale: 삼만, 만 오천, 십, 천."""
SCALED = rf"(?![십백천만억조](?!{SINO_SYLLABLE}|\s)[{H}]){SCALED_ANY}"
"""The same, a lone scale only before a space (천장 is a ceiling; 천 장, a thousand sheets)."""
SCALE_DIGITS = "[십백천만억]"
DIGIT_NUMBER = rf"(?:{DIGITS}(?:\s?{SCALE_DIGITS})*(?:\s?\d+(?:\s?{SCALE_DIGITS})+)*)"
"""30,000 · 3만 · 1억 2천만 · 3만 5천 · 2.5."""
UNITS_CARDINAL = alt(CARDINAL_UNITS)
UNITS_ATTRIBUTIVE = alt(ATTRIBUTIVE_UNITS)
TENS = alt(NATIVE_TENS)
CARDINAL = rf"(?:열{UNITS_CARDINAL}|{TENS}\s?{UNITS_CARDINAL}|(?!쉰){TENS}|(?!하나(?:요|도))(?<![야고]\s){UNITS_CARDINAL})"
"""하나, 스물하나, 열둘: a number alone (not 하나요, an ending; not 하나도, "not at all"; not
the verb of 해야 하나, 뭐라고 하나)."""
ATTRIBUTIVE = rf"(?:열{UNITS_ATTRIBUTIVE}|{TENS}\s?{UNITS_ATTRIBUTIVE}|스무|열|{TENS}|{UNITS_ATTRIBUTIVE})"
"""한, 두, 세, 스무, 열두: before a counter."""
NOT_ORDINAL = r"(?!\s?번\s?째)"
COUNTER = rf"(?:{alt(SINO_COUNTERS)}){NOT_ORDINAL}"
NATIVE_COUNTER = rf"(?:{alt(NATIVE_COUNTERS)}){NOT_ORDINAL}"
CURRENCY_WORD = alt(CURRENCY_WORDS)
CURRENCY_SYMBOL = alt(CURRENCY_SYMBOLS)
CURRENCY_CODE = "(?-i:" + "|".join(CURRENCY_CODES) + ")"
MONEY_AMOUNT = rf"(?:{LD}{DIGIT_NUMBER}|{L}{SCALED_ANY})"
"""3만, 30,000, 삼만, 만 오천, 천: a lone digit (구원, 일원) is a word."""
HOUR = rf"(?:{LD}(?:2[0-4]|1\d|0?\d)|{L}(?!한\s?시도)(?:열한|열두|열|{UNITS_ATTRIBUTIVE}))"
MINUTE_WORDS = rf"(?:[이삼사오]?십{D1}?|{D1})"
PART = alt(DAY_PARTS)
DAY_NUMBER = "(?:3[01]|[12]\\d|0?[1-9])"
MONTH_NUMBER = "(?:1[0-2]|0?[1-9])"
MONTH = rf"(?P<month>{LD}{MONTH_NUMBER}|{L}{alt(MONTHS)})\s?월"
DAY_OF_MONTH = rf"(?P<day>{LD}{DAY_NUMBER}|{L}?(?:[이삼]?십{D1}?|{D1}))\s?일"
"""3일, 25일, 삼일, 이십오 일 (이십일 is the 20th: 이십 and 일)."""
YEAR = rf"(?P<year>{LD}\d{{4}}|{L}(?=[일이]?천){SCALED_ANY})\s?년"
DIRECTION = alt(DIRECTIONS)
NOT_A_DAY_OF_MONTH = r"(?!에|까지|부터|자|로|\s?날)"
"""3일에, 3일까지 name a day of the month, not three days."""
DURATION_UNIT = rf"(?:{alt([*TIME_UNITS, *(u for u in DATE_UNITS if u != '일')])}|일{NOT_A_DAY_OF_MONTH})"
COUNT = (
    rf"(?:{LD}(?<![월달])(?<![월달]\s)(?!\d{{4}}\s?년)\d+(?:\.\d+)?"
    rf"|{L}(?<![월달]\s)(?:{ATTRIBUTIVE}(?=\s?(?:시간|달|주))|{SCALED}(?=\s?(?:초|분|시간|일|주|개월))"
    rf"|(?![일이삼사오육칠팔구십백]*[천만억조]){SCALED}(?=\s?년)"
    rf"|[일삼사오육칠팔구](?=\s?(?:개월|년))))"
)
"""A number before a unit of time: digits; native before 시간, 달, 주 (두 분 is two people);
Sino-Korean with a scale before any (삼십 분); one syllable only before 개월, 년."""
DURATION_PART = (
    rf"(?:{L}(?P<half_of>반)\s?(?P<unit_of>년)"
    rf"|(?:(?P<n>{COUNT})\s?|{L}(?={alt(DAY_WORDS)}))(?P<unit>{alt(DAY_WORDS)}|{DURATION_UNIT})(?:\s?(?P<half>반){R})?){R}"
)
DURATION = re.sub(r"\(\?P<\w+>", "(?:", DURATION_PART)
DURATIONS = rf"{DURATION}(?:\s?{DURATION})*"
DATE_COUNT = rf"(?:{LD}\d+|{L}(?:{ATTRIBUTIVE}|{SINO_NUMBER}))"

TOKEN = r"[가-힣]|[^\W\d_]+|\d|[^\w\s]"
"""A token of the rules' needs: one Hangul syllable (words run together), a Latin word, a digit, a sign."""
DG = frozenset("0123456789")
SCALE_TOKENS = frozenset(SCALES)
UNIT_TOKENS = last([*TIME_UNITS, *DATE_UNITS, *DAY_WORDS]) | {"반"}
DIRECTION_TOKENS = first(DIRECTIONS) | last(DIRECTIONS)

RULES = {  # kind: (rule, pattern, tokens the text must have: one of each set)
    "number": (
        ("digits", rf"{LD}(?<![:/$€£¥₩])(?<!제)(?<!제\s){DIGIT_NUMBER}(?![\d:/A-Za-z]|[.,/-]\d){NOT_ORDINAL}", (DG,)),
        ("spelled", rf"{L}(?=(?:{SINO_SYLLABLE}\s?){{3}}|[이삼사오육칠팔구]십|[삼사육칠팔구][백천만억]){SCALED}{R}{NOT_ORDINAL}",
         (SCALE_TOKENS,)),
        ("spelled", rf"{L}{SCALED}(?=\s?{COUNTER}{R})", (SCALE_TOKENS, first(SINO_COUNTERS))),
        ("spelled", rf"{L}[일삼사오육칠팔구](?=\s?{alt(SAFE_COUNTERS)}{R})", (frozenset("일삼사오육칠팔구"), first(SAFE_COUNTERS))),
        ("spelled", rf"{L}{CARDINAL}{R}", (last([*CARDINAL_UNITS, *NATIVE_TENS]),)),
        ("spelled", rf"{L}(?!한번|한대|한\s?시도){ATTRIBUTIVE}(?=\s?{NATIVE_COUNTER}{R})",
         (last([*ATTRIBUTIVE_UNITS, *NATIVE_TENS, "열", "스무"]), first(NATIVE_COUNTERS))),
    ),
    "ordinal": (
        ("digits", rf"{LD}(?P<n>\d+)\s?번\s?째{R_ORD}", (DG, {"째"})),
        ("digits", rf"{L}제\s?(?P<n>\d+)(?![\d.,])", (DG, {"제"})),
        ("spelled", rf"{L}(?:(?P<prefix>첫|{ATTRIBUTIVE})\s?번\s?(?=째)|(?={alt(ORDINAL_WORDS)}))(?P<word>{alt(ORDINAL_WORDS)}|째){R_ORD}",
         ({"째"},)),
    ),
    "money": (
        ("amount", rf"(?P<amount>{MONEY_AMOUNT})\s?(?P<currency>{CURRENCY_WORD}){R}", (last(CURRENCY_WORDS), DG | SCALE_TOKENS)),
        ("amount", rf"(?<![\w.,])(?P<currency>{CURRENCY_SYMBOL})\s?(?P<amount>{DIGIT_NUMBER})(?![\d]|[.,]\d)",
         (first(CURRENCY_SYMBOLS) | {"us"}, DG)),
        ("amount", rf"(?<![A-Za-z])(?P<currency>{CURRENCY_CODE})\s?(?P<amount>{DIGIT_NUMBER})(?![\d]|[.,]\d)",
         ({c.lower() for c in CURRENCY_CODES}, DG)),
        ("amount", rf"(?P<amount>{LD}{DIGIT_NUMBER})\s?(?P<currency>{CURRENCY_CODE})(?![A-Za-z])",
         ({c.lower() for c in CURRENCY_CODES}, DG)),
    ),
    "date": (
        ("day", rf"{L}(?P<day_word>{alt(RELATIVE_DAYS)}){R}", (last(RELATIVE_DAYS),)),
        ("weekday", rf"{L}(?:(?P<week>{alt(WEEK_SHIFTS)})\s?|(?P<shift>{alt(SHIFTS)})\s?)?(?P<weekday>{alt(WEEKDAYS)}){R_DAY}",
         ({"요", "욜"},)),
        ("calendar", rf"(?:{YEAR}\s?)?{MONTH}\s?{DAY_OF_MONTH}{R_DAY}", ({"월"}, {"일"})),
        ("calendar", rf"{L}(?P<month_shift>{alt(MONTH_SHIFTS)})\s?{DAY_OF_MONTH}{R_DAY}", ({"달"}, {"일"})),
        ("calendar", rf"{LD}(?P<year>\d{{4}})\s?(?P<sep>[./-])\s?(?P<month>{MONTH_NUMBER})\s?(?P=sep)\s?(?P<day>{DAY_NUMBER})(?![\d])",
         (DG, {".", "-", "/"})),
        ("numeric", rf"{LD}(?<!/)(?P<a>{MONTH_NUMBER})/(?P<b>{DAY_NUMBER})(?![\d/])", (DG, {"/"})),
        ("day_of_month", rf"(?<!월)(?<!월\s){DAY_OF_MONTH}(?=에|까지|부터|자|로|쯤|\s?날)", ({"일"},)),
        ("offset", rf"(?P<n>{DATE_COUNT})\s?(?P<unit>{alt(DATE_UNITS)})\s?(?P<direction>{DIRECTION}){R}",
         (DIRECTION_TOKENS, last(DATE_UNITS))),
        ("offset", rf"{L}(?P<unit>{alt(DAY_WORDS)})\s?(?P<direction>{DIRECTION}){R}", (DIRECTION_TOKENS, last(DAY_WORDS))),
    ),
    "time": (
        ("named", rf"{L}(?P<named>{alt(NAMED_TIMES)}){R}", ({"오", "정", "시"},)),
        ("clock", rf"(?:{L}(?P<part>{PART})\s?)?(?P<hour>{HOUR})\s?시(?!간)"
                  rf"(?:\s?(?:{LD}(?P<minute>[0-5]?\d)|{L}(?P<minute_words>{MINUTE_WORDS}))\s?분)?{R}", ({"시"},)),
        ("clock", rf"(?:{L}(?P<part>{PART})\s?)?{LD}(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)(?![\d:])", (DG, {":"})),
        ("relative", rf"(?:{L}(?P<part>{PART})\s?)?(?P<hour>{HOUR})\s?(?P<relation>시)\s?(?P<fraction>반){R}", ({"반"}, {"시"})),
        ("offset", rf"(?P<duration>{DURATIONS})\s?(?P<direction>{DIRECTION}){R}", (DIRECTION_TOKENS, UNIT_TOKENS)),
    ),
    "duration": (("duration", DURATIONS, (UNIT_TOKENS,)),),
}

LANGUAGE = Korean(
    code="ko",
    numbers=NUMBERS,
    scales=SCALES,
    articles=frozenset(),
    joiners=frozenset(),
    ordinals=ORDINALS,
    not_one_after=frozenset(),
    months=MONTHS,
    weekdays=WEEKDAYS,
    relative_days=RELATIVE_DAYS,
    shifts=SHIFTS,
    week_shifts=spaceless(WEEK_SHIFTS),
    directions=DIRECTIONS,
    units=TIME_UNITS | DATE_UNITS | DAY_WORDS,
    meridiem={"am": "am", "pm": "pm"},
    day_parts=DAY_PARTS,
    named_times=spaceless(NAMED_TIMES),
    fractions={"반": 30},
    relations={"시": 1},
    halves=frozenset({"반"}),
    currencies=CURRENCY_SYMBOLS | {c.lower(): c for c in CURRENCY_CODES} | CURRENCY_WORDS,
    date_order="mdy",
    rules=RULES,
    duration_part=DURATION_PART,
    token=TOKEN,
    month_shifts=spaceless(MONTH_SHIFTS),
    scales_join=True,
)
