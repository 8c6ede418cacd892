"""The root of every botyard error.

Each package has one root error deriving from :class:`BotyardError`; errors carry
structured fields, and the NATS boundary turns them into ``{error: {code, message}}``.
"""

from __future__ import annotations

from typing import Any


class BotyardError(Exception):
    """Root of all botyard errors. ``code`` is the stable, machine-readable name."""

    code = "internal"

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.fields}


class TurnError(BotyardError):
    """A turn was refused or failed; raised by :class:`botyard.Client`."""

    def __init__(self, code: str, message: str, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
