"""Garbage-collector pauses of this process, timed through ``gc.callbacks``: a full
collection stops every thread, so its length shows up in every turn's tail latency.
Reported in heartbeats (``gc_ms``) and as ``botyard_gc_seconds{generation}``."""

from __future__ import annotations

import gc
import time
from collections import deque

REPORTED_FROM = 0.001
"""Pauses shorter than this (seconds) are not kept."""


class GcPauses:
    def __init__(self) -> None:
        self._started = 0.0
        self._pauses: deque[tuple[int, float]] = deque(maxlen=1000)

    def install(self) -> "GcPauses":
        gc.callbacks.append(self._callback)
        return self

    def remove(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        if took >= REPORTED_FROM:
            self._pauses.append((info["generation"], took))

    def take(self) -> list[tuple[int, float]]:
        """(generation, seconds) of the pauses since the last call."""
        out = []
        while self._pauses:
            out.append(self._pauses.popleft())
        return out


def freeze_survivors() -> None:
    """Collect the young generations (cheap), then move every survivor into the permanent
    generation: full collections stop scanning the node's imports, models and
    conversations, which are long-lived and free of cycles (a cycle that reached the old
    generation since the last freeze is kept for good: rare, and small)."""
    gc.collect(1)
    gc.freeze()
