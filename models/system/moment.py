"""The turn's time in the bot's time zone: what relative dates and times resolve against."""

from __future__ import annotations

import time
from datetime import date, datetime
from zoneinfo import ZoneInfo


class Moment:
    """``now`` (seconds since the epoch; default: the current time) in ``zone``, converted
    only when a rule asks for it: most turns have no date or time."""

    __slots__ = ("at", "zone", "_local")

    def __init__(self, at: float | None, zone: ZoneInfo) -> None:
        self.at = time.time() if at is None else at
        self.zone = zone
        self._local: datetime | None = None

    @property
    def local(self) -> datetime:
        if self._local is None:
            self._local = datetime.fromtimestamp(self.at, self.zone)
        return self._local

    @property
    def today(self) -> date:
        return self.local.date()
