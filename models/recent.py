"""A bounded, thread-safe map of recent results: what a node keeps of utterances it just read."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Hashable, Iterable


class Recent:
    """The values of the last ``size`` keys put or got (the least recently used leaves first)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def missing(self, keys: Iterable[Hashable]) -> list:
        """The keys not held, each once, in order."""
        with self._lock:
            return list(dict.fromkeys(k for k in keys if k not in self._items))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, key: Hashable) -> Any:
        return self._items[key]
