"""The conversations a conversation actor holds in memory, least recently used first, with a
count per tenant (for the ``conversations`` quota)."""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Any

Key = tuple[str, str, str]


class Resident(OrderedDict):
    """An ``OrderedDict`` of (tenant, bot, conversation) -> (conversation, last used) that
    counts each tenant's entries as they come and go."""

    def __init__(self) -> None:
        super().__init__()
        self.per_tenant: Counter[str] = Counter()

    def __setitem__(self, key: Key, value: Any) -> None:
        if key not in self:
            self.per_tenant[key[0]] += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: Key) -> None:
        super().__delitem__(key)
        self._gone(key)

    def pop(self, key: Key, *default: Any) -> Any:
        if key in self:
            value = super().pop(key)
            self._gone(key)
            return value
        return super().pop(key, *default)

    def popitem(self, last: bool = True) -> tuple[Key, Any]:
        key, value = super().popitem(last=last)
        self._gone(key)
        return key, value

    def clear(self) -> None:
        super().clear()
        self.per_tenant.clear()

    def _gone(self, key: Key) -> None:
        self.per_tenant[key[0]] -= 1
        if not self.per_tenant[key[0]]:
            del self.per_tenant[key[0]]

    def evict_over(self, limit_of) -> int:
        """Drop each tenant's least recently used conversations over ``limit_of(tenant)``
        (0: no limit); the number dropped."""
        over = {t: n - limit_of(t) for t, n in self.per_tenant.items() if limit_of(t) and n > limit_of(t)}
        if not over:
            return 0
        gone = []
        for key in self:
            if over.get(key[0], 0) > 0:
                gone.append(key)
                over[key[0]] -= 1
                if not any(v > 0 for v in over.values()):
                    break
        for key in gone:
            del self[key]
        return len(gone)
