"""Loaded models kept within a byte budget: a segmented LRU.

A model enters on probation; a second hit moves it to the protected segment (at most
``protected_share`` of the budget). Eviction takes the least recently used model on
probation first, so a burst of newly placed or one-off bots cycles through probation
and never pushes out the hot ones.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    resident: int = 0
    resident_bytes: int = 0


class ModelCache(Generic[V]):
    def __init__(self, budget_bytes: int, *, protected_share: float = 0.8) -> None:
        self.budget = budget_bytes
        self.protected_budget = int(budget_bytes * protected_share)
        self.probation: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self.protected: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self.bytes = 0
        self.protected_bytes = 0
        self.stats = CacheStats()

    def __contains__(self, key: str) -> bool:
        return key in self.protected or key in self.probation

    def __len__(self) -> int:
        return len(self.protected) + len(self.probation)

    def peek(self, key: str | None) -> V | None:
        """The value, if held, without counting a use (no hit, no promotion)."""
        entry = self.protected.get(key) or self.probation.get(key)
        return entry[0] if entry is not None else None

    def get(self, key: str) -> V | None:
        if key in self.protected:
            self.protected.move_to_end(key)
            self.stats.hits += 1
            return self.protected[key][0]
        entry = self.probation.pop(key, None)
        if entry is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        self.protected[key] = entry  # second use: protect it
        self.protected_bytes += entry[1]
        while self.protected_bytes > self.protected_budget and len(self.protected) > 1:
            old_key, old = self.protected.popitem(last=False)  # demote, not evict
            self.protected_bytes -= old[1]
            self.probation[old_key] = old
        return entry[0]

    def put(self, key: str, value: V, size: int) -> list[str]:
        """Insert on probation; return the keys evicted to stay within the budget."""
        if key in self:
            return []
        self.probation[key] = (value, size)
        self.bytes += size
        evicted = []
        while self.bytes > self.budget:
            victim = self._oldest(exclude=key)  # never the model just loaded
            if victim is None:
                break
            segment, old_key = victim
            _, old_size = segment.pop(old_key)
            self.bytes -= old_size
            if segment is self.protected:
                self.protected_bytes -= old_size
            evicted.append(old_key)
        self.stats.evictions += len(evicted)
        self.stats.resident, self.stats.resident_bytes = len(self), self.bytes
        return evicted

    def _oldest(self, exclude: str) -> tuple[OrderedDict, str] | None:
        for segment in (self.probation, self.protected):
            for key in segment:  # least recently used first
                if key != exclude:
                    return segment, key
        return None
