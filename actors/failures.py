"""Why actors died: pykka stops an actor whose handler raises; the supervisor reads why here."""

from __future__ import annotations

import threading

_lock = threading.Lock()
_why: dict[str, str] = {}


class Supervised:
    """Mixin for pykka actors: records the exception that stopped the actor."""

    def on_failure(self, exception_type, exception_value, traceback) -> None:  # pykka hook
        with _lock:
            _why[self.actor_urn] = f"{exception_type.__name__}: {exception_value}"


def why(actor_urn: str) -> str:
    with _lock:
        return _why.pop(actor_urn, "stopped without an error")
