"""The administrator actor: answers ``botyard.admin.<verb>`` requests off the NATS thread.

What a verb does is the node's business: it injects ``handle(verb, body) -> result``
(the application service in :mod:`botyard.ops.admin`); this actor decodes, calls it and
turns what it returns or raises into exactly one reply.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import pykka

from botyard import protocol
from botyard.actors.failures import Supervised
from botyard.actors.messages import AdminWork
from botyard.actors.outbox import Outbox, error_reply, ok_reply
from botyard.errors import BotyardError

log = logging.getLogger(__name__)


class Administrator(Supervised, pykka.ThreadingActor):
    def __init__(self, handle: Callable[[str, Any], Any], outbox: Outbox) -> None:
        super().__init__()
        self.handle = handle
        self.outbox = outbox

    def on_receive(self, message: object) -> object:
        if not isinstance(message, AdminWork):
            raise TypeError(f"Administrator got {type(message).__name__}")
        w = message
        try:
            body = protocol.decode_body(w.data, w.as_json)
            result = self.handle(w.verb, body)
            reply = ok_reply(w.reply_to, w.as_json, {"ok": True, "result": result})
        except BotyardError as exc:
            reply = error_reply(w.reply_to, w.as_json, exc.code, exc.message, **exc.fields)
        except Exception as exc:  # never let a bad request kill the actor
            log.exception("admin %s failed", w.verb)
            reply = error_reply(w.reply_to, w.as_json, protocol.INTERNAL, f"{type(exc).__name__}: {exc}")
        self.outbox.send([reply])
        return None
