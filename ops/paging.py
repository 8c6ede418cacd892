"""Pages of admin replies that fit the NATS connection's ``max_payload``.

A NATS server refuses a message larger than its ``max_payload`` (1 MiB by default, told
to each client in its INFO), so a reply built without regard to it never arrives. The
node fills each page of a list-like reply (``export``, ``replay``, ``whatif``'s changes,
``list``, ``log``, ``labels``) item by item, measuring every item's encoded size, and
stops before the reply would exceed the budget; ``next`` then says where the next page
starts. An item that cannot fit even alone is ``reply_too_large`` (``size``,
``max_payload``), never a silently lost reply.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

import msgpack

from botyard.ops.errors import AdminError
from botyard.protocol import REPLY_TOO_LARGE

JSON_HEADER_BYTES = len(b"NATS/1.0\r\nContent-Type: application/json\r\n\r\n")
"""The NATS headers of a JSON reply, on the wire: the server counts them against
``max_payload`` (a msgpack reply has none)."""
_CURSOR = 2**63 - 1
"""A stand-in for ``next`` while measuring: no real cursor encodes longer."""
_LIST_HEADER = 4
"""msgpack's array header grows from 1 byte ([]) to at most 5."""


def encoded_size(value: Any, as_json: bool | None) -> int:
    """Bytes of ``value`` as the reply encodes it (:func:`botyard.protocol.encode_body`);
    with ``as_json`` None (the encoding is not known), the larger of msgpack and JSON."""
    if as_json is None:
        return max(encoded_size(value, False), encoded_size(value, True))
    if as_json:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    return len(msgpack.packb(value, use_bin_type=True))


def too_large(size: int, max_payload: int, what: str = "the reply") -> AdminError:
    return AdminError(
        REPLY_TOO_LARGE, f"{what} is {size} bytes; the NATS server's max_payload is {max_payload}",
        size=size, max_payload=max_payload,
    )


class Budget:
    """How many bytes one reply may take; ``max_bytes`` None: no limit (CLI, HTTP)."""

    def __init__(self, max_bytes: int | None = None, as_json: bool | None = None) -> None:
        self.max_bytes = max_bytes
        self.as_json = as_json

    def size(self, value: Any) -> int:
        return encoded_size(value, self.as_json)

    @property
    def headers(self) -> int:
        return 0 if self.as_json is False else JSON_HEADER_BYTES

    def check(self, reply: Mapping[str, Any]) -> None:
        """Refuse a whole reply (one that is not paged) that would not fit."""
        if self.max_bytes is not None:
            size = self.size(reply) + self.headers
            if size > self.max_bytes:
                raise too_large(size, self.max_bytes)

    def fill(
        self,
        result: Mapping[str, Any],
        key: str,
        items: Iterable[Any],
        *,
        limit: int | None = None,
        more: bool = False,
    ) -> tuple[list[Any], bool]:
        """Take items for ``result[key]`` while the whole reply (``{"ok": true, "result":
        {**result, key: page, "next": cursor}}``) fits, and at most ``limit`` of them.

        Returns the page and whether items remain (``more``: the caller knows of more
        beyond ``items``). ``items`` is consumed lazily: one past the page at most.
        """
        page: list[Any] = []
        iterator = iter(items)
        if self.max_bytes is None:
            for item in iterator:
                if limit is not None and len(page) >= limit:
                    return page, True
                page.append(item)
            return page, more
        used = self.size({"ok": True, "result": {**result, key: [], "next": _CURSOR}}) + _LIST_HEADER + self.headers
        room = self.max_bytes
        if used > room:
            raise too_large(used, self.max_bytes)
        for item in iterator:
            if limit is not None and len(page) >= limit:
                return page, True
            size = self.size(item) + 1  # a JSON comma
            if used + size > room:
                if not page:
                    raise too_large(used + size, self.max_bytes, "a reply holding a single item")
                return page, True
            page.append(item)
            used += size
        return page, more
