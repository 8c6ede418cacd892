"""Numbers in digits (``1,200``, ``3.5``, ``12,99``) and spelled out (``three hundred and fifty
thousand``, ``twenty-five``, ``a dozen``), and the ``number`` and ``ordinal`` kinds.

Spelled numbers are read the same way in every language: each scale word (hundred, thousand;
in Korean 십, 백, 천, 만, 억) multiplies the numbers before it that are smaller than itself
(``three hundred fifty thousand`` = (3 x 100 + 50) x 1000; ``삼천오백만`` = (3 x 1000 + 5 x
100) x 10000), and a word joins the number before it only where it can (``twenty`` takes
``five``, ``five`` does not take ``twenty``): a run that cannot be one number is several.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Iterator

from botyard.models.system.language import Language

Found = tuple[object, int, int]
"""A value and the characters ``start:end`` of the utterance it was read from."""

_GROUPED = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def digits(text: str) -> Decimal | None:
    """``1,200`` 1200, ``1,250.00`` 1250.00, ``3.5``, ``12,99`` 12.99 (a comma before anything
    but groups of three digits is a decimal comma), ``-5``."""
    text = text.replace("\u2212", "-").replace(" ", "")
    if _GROUPED.fullmatch(text):
        text = text.replace(",", "")
    elif text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def plain(value: Decimal) -> int | float:
    """A JSON number: an int when whole."""
    return int(value) if value == value.to_integral_value() else float(value)


def _tokens(text: str, lang: Language, offset: int = 0) -> list[tuple[str, object, int, int]]:
    """``(kind, value, start, end)``: kind ``digits``, ``number``, ``scale``, ``article``, ``joiner``
    (an ordinal word is a number or, for ``hundredth``, a scale)."""
    out = []
    for m in lang.number_token_re.finditer(text):
        start, end = m.start() + offset, m.end() + offset
        if m.group("digits"):
            value = digits(m.group())
            if value is not None:
                out.append(("digits", value, start, end))
            continue
        word = lang.word(m.group())
        if word in lang.numbers:
            out.append(("number", Decimal(lang.numbers[word]), start, end))
        elif word in lang.scales:
            out.append(("scale", Decimal(lang.scales[word]), start, end))
        elif word in lang.ordinals:
            kind = "scale" if lang.ordinals[word] in lang.scales.values() and lang.ordinals[word] >= 100 else "number"
            out.append((kind, Decimal(lang.ordinals[word]), start, end))
        elif word in lang.articles:
            out.append(("article", Decimal(1), start, end))
        else:
            out.append(("joiner", None, start, end))
    return out


class _Number:
    """A number being read: its parts ``[value, magnitude, from digits]``."""

    def __init__(self, start: int, joins: bool = False) -> None:
        self.parts: list[list] = []
        self.start = self.end = start
        self.words: list[str] = []
        self.joins = joins
        """Digits or a smaller scale alone may follow a scale (Korean ``1억 2천만``, ``이천십``)."""

    def takes(self, kind: str, value: Decimal) -> bool:
        if not self.parts:
            return True
        tail = self.parts[-1]
        if kind == "digits":
            return self.joins and tail[1] > 1 and value < tail[1]
        if tail[1] == 1:  # after a plain number: only tens take units (twenty five)
            return not tail[2] and 20 <= tail[0] < 100 and tail[0] % 10 == 0 and value < 10
        return value < tail[1]  # after a scale: anything smaller (a hundred and twenty)

    def scale(self, value: Decimal) -> bool:
        """Multiply the trailing parts smaller than ``value``; False when there are none."""
        i = len(self.parts)
        while i and self.parts[i - 1][1] < value:
            i -= 1
        if i == len(self.parts):
            return False
        total = sum(p[0] for p in self.parts[i:])
        self.parts[i:] = [[total * value, value, False]]
        return True

    @property
    def value(self) -> Decimal:
        return sum((p[0] for p in self.parts), Decimal(0))


def read(text: str, lang: Language, offset: int = 0) -> list[tuple[Decimal, int, int, int]]:
    """Every number in ``text`` (a run of number words and digits): ``(value, start, end,
    tokens)`` with ``start:end`` shifted by ``offset``."""
    toks = _tokens(text, lang, offset)
    out: list[tuple[Decimal, int, int, int]] = []
    cur: _Number | None = None
    count = 0

    def close() -> None:
        nonlocal cur, count
        if cur is not None and cur.parts:
            out.append((cur.value, cur.start, cur.end, count))
        cur, count = None, 0

    for i, (kind, value, start, end) in enumerate(toks):
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if kind == "article":
            close()
            if nxt is not None and nxt[0] == "scale":
                cur = _Number(start, lang.scales_join)
                cur.parts.append([Decimal(1), 1, False])
                cur.end, count = end, 1
            continue
        if kind == "joiner":  # kept only between a scale and a number it takes
            if cur is None or not cur.parts or cur.parts[-1][1] == 1 or nxt is None or nxt[0] != "number" \
                    or not cur.takes("number", nxt[1]):
                close()
            continue
        if kind == "scale":
            if cur is not None and cur.scale(value):
                cur.end, count = end, count + 1
                continue
            if cur is not None and cur.joins and cur.parts and value < cur.parts[-1][1]:  # 이천십: one ten
                cur.parts.append([value, value, False])
                cur.end, count = end, count + 1
                continue
            close()
            cur = _Number(start, lang.scales_join)
            cur.parts.append([value, value, False])
            cur.end, count = end, 1
            continue
        if cur is None or not cur.takes(kind, value):
            close()
            cur = _Number(start, lang.scales_join)
        cur.parts.append([value, 1, kind == "digits"])
        cur.end, count = end, count + 1
    close()
    return out


def one(text: str, lang: Language) -> Decimal | None:
    """The value of ``text`` when it is one number (``a`` and ``a couple of`` count 1 and 2)."""
    found = read(text, lang)
    if len(found) == 1:
        return found[0][0]
    if not found and lang.word(text) in lang.articles:
        return Decimal(1)
    return None


def _before(text: str, start: int, lang: Language) -> str:
    m = re.search(r"(\w+)\W*$", text[:start])
    return lang.word(m.group(1)) if m else ""


def number_digits(m: re.Match, lang: Language, text: str, ctx) -> Iterator[Found]:
    value = one(m.group(), lang)
    if value is not None:
        yield plain(value), m.start(), m.end()


def number_spelled(m: re.Match, lang: Language, text: str, ctx) -> Iterator[Found]:
    for value, start, end, count in read(m.group(), lang, m.start()):
        if count == 1 and value == 1 and lang.word(text[start:end]) in lang.numbers and _before(text, start, lang) in lang.not_one_after:
            continue  # "which one", "the blue one"
        yield plain(value), start, end


def ordinal_digits(m: re.Match, lang: Language, text: str, ctx) -> Iterator[Found]:
    yield int(m.group("n")), m.start(), m.end()


def ordinal_spelled(m: re.Match, lang: Language, text: str, ctx) -> Iterator[Found]:
    """``twenty-first`` 21, ``hundredth`` 100, ``one hundred and first`` 101; when the words
    before the ordinal are not part of it (``five first``), the ordinal alone."""
    found = read(m.group(), lang, m.start())
    if m.group("prefix") and len(found) == 1:
        yield int(found[0][0]), m.start(), m.end()
    else:
        yield lang.ordinals[lang.word(m.group("word"))], m.start("word"), m.end("word")
