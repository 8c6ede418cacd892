"""The kinds of system entity and the values they give (JSON-safe, ready for slots)."""

from __future__ import annotations

KINDS = ("number", "ordinal", "money", "date", "time", "duration")
"""``number``: 42 or 3.5 (an int when whole); ``ordinal``: 3 for "third" or "3rd"; ``money``:
``"30 EUR"``, ``"12.50 USD"`` (the amount, then the ISO 4217 code); ``date``: ``"2026-12-11"``;
``time``: ``"15:30"`` (24-hour clock); ``duration``: seconds, an int (a month counts 30 days,
a year 365)."""

TEXT_KINDS = frozenset({"money", "date", "time"})
TIMED_KINDS = frozenset({"date", "time"})
"""Kinds whose values depend on the turn's time (``tomorrow``, ``in two hours``)."""
"""Kinds whose values are texts (the others give numbers)."""

EXTRACTOR = "system"
"""The ``extractor`` of a system entity in a turn's entities."""
