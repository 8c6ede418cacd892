"""The interface actors use to send replies; implemented by the NATS bridge."""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

from botyard.protocol import encode_body, error_body

Outgoing = tuple[str, bytes, bool]
"""(reply subject, body, body is JSON)"""


class Outbox(Protocol):
    def send(self, items: Sequence[Outgoing]) -> None:
        """Publish replies; thread-safe, never blocks on the network."""


def error_reply(reply_to: str, as_json: bool, code: str, message: str, **fields: Any) -> Outgoing:
    return reply_to, encode_body(error_body(code, message, **fields), as_json), as_json


def ok_reply(reply_to: str, as_json: bool, body: Mapping[str, Any]) -> Outgoing:
    return reply_to, encode_body(body, as_json), as_json
