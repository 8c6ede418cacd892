"""Amounts of money: ``$12.50``, ``EUR 7``, ``30 euros``, ``fifteen dollars``, ``12,99 €``.

The value is a text, ``"<amount> <ISO 4217 code>"``: ``"30 EUR"``, ``"12.50 USD"`` (whole
amounts without decimals, others with the currency's minor digits). It reads as it is in a
reply, a text slot keeps it (its ``regex`` can require a currency: ``'.* EUR'``), and a
number slot takes its amount (:func:`botyard.dialogue.slots.coerce`).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Iterator

from botyard.models.system.language import Language
from botyard.models.system.numbers import Found, one

MINOR_DIGITS = {"JPY": 0, "KRW": 0, "ISK": 0, "HUF": 2}
"""Digits after the decimal point per currency (2 when not listed)."""
VALUE_RE = re.compile(r"(-?\d+(?:\.\d+)?) ([A-Z]{3})")
"""A money value: the amount and the code."""


def value(amount: Decimal, code: str) -> str:
    if amount == amount.to_integral_value():
        return f"{int(amount)} {code}"
    places = max(MINOR_DIGITS.get(code, 2), -int(amount.as_tuple().exponent))
    return f"{amount:.{places}f} {code}"


def amount(m: re.Match, lang: Language, text: str, ctx) -> Iterator[Found]:
    number = one(m.group("amount"), lang)
    code = lang.currencies.get(lang.word(m.group("currency")))
    if number is not None and code is not None:
        yield value(number, code), m.start(), m.end()
