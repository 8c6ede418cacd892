"""Logging: readable lines by default, or one JSON object per record (``BOTYARD_LOG_FORMAT=json``)
with the record's extra fields (``tenant``, ``bot``, ``conversation_id``, ``turn``,
``turn_id``, ...) as keys, for log shippers."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "INFO", form: str = "text", stream=None, *, path: Path | None = None) -> None:
    """Every record of ``level`` and above to ``stream`` (default: stderr), or appended to the
    file ``path`` (its directory made if need be) instead."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
    if form == "json":
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        ))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
