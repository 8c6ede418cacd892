"""The root of every botyard error.

Each package has one root error deriving from :class:`BotyardError`; errors carry
structured fields, and every boundary (NATS replies, the HTTP API) sends them as
``{"error": wire_error(...)}``: ``{code, message, **fields}``, the fields made JSON- and
msgpack-safe (:meth:`BotyardError.to_wire` is the same for an error in hand).
"""

from __future__ import annotations

from typing import Any, Mapping


def wire_error(code: str, message: str, /, **fields: Any) -> dict[str, Any]:
    """An error as it goes on every wire: ``code`` and ``message`` first (a field cannot
    replace them), then the fields, each a JSON- and msgpack-safe value (others as ``str``)."""
    return {"code": code, "message": message, **{k: _plain(v) for k, v in fields.items() if k not in ("code", "message")}}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


class BotyardError(Exception):
    """Root of all botyard errors. ``code`` is the stable, machine-readable name."""

    code = "internal"

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def to_wire(self) -> dict[str, Any]:
        """This error as it goes on the wire (:func:`wire_error`)."""
        return wire_error(self.code, self.message, **self.fields)


class TurnError(BotyardError):
    """A turn was refused or failed; raised by :class:`botyard.Client`."""

    def __init__(self, code: str, message: str, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
