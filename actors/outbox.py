"""The interface actors use to send replies; implemented by the NATS bridge."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Protocol, Sequence

from botyard.errors import wire_error
from botyard.protocol import REPLY_TOO_LARGE, encode_body

OK = "ok"


class Outgoing(NamedTuple):
    """One reply: where, what, and (for metrics) its outcome and when its request arrived."""

    subject: str
    body: bytes
    as_json: bool
    code: str = OK
    """``ok`` or the error code."""
    received_at: float = 0.0
    """``time.time()`` when the turn's request arrived; 0 for replies that are not turns."""
    reply: bool = True
    """False for a publication that answers no request (a handoff notice): neither the
    in-flight count nor the reply metrics count it."""


class Outbox(Protocol):
    def send(self, items: Sequence[Outgoing]) -> None:
        """Publish replies; thread-safe, never blocks on the network."""


def error_reply(
    reply_to: str, as_json: bool, code: str, message: str, *, received_at: float = 0.0, **fields: Any
) -> Outgoing:
    body = {"error": wire_error(code, message, **fields)}  # the one wire form of errors, as HTTP's
    return Outgoing(reply_to, encode_body(body, as_json), as_json, code, received_at)


def ok_reply(reply_to: str, as_json: bool, body: Mapping[str, Any], *, received_at: float = 0.0) -> Outgoing:
    return Outgoing(reply_to, encode_body(body, as_json), as_json, OK, received_at)


def too_large_reply(item: Outgoing, size: int, max_payload: int) -> Outgoing:
    """The error that replaces a reply the NATS server would refuse (``size`` bytes, headers
    included, over its ``max_payload``): the requester gets ``reply_too_large``, not silence."""
    return error_reply(
        item.subject, item.as_json, REPLY_TOO_LARGE,
        f"the reply is {size} bytes; the NATS server's max_payload is {max_payload}: ask for a smaller page (limit)",
        received_at=item.received_at, size=size, max_payload=max_payload,
    )
