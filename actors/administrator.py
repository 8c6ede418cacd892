"""The administrator actor: answers ``botyard.admin.<verb>`` requests off the NATS thread.

What a verb does is the node's business: it injects ``handle(verb, body) -> result``
(the application service in :mod:`botyard.ops.admin`); this actor decodes, calls it and
turns what it returns or raises into exactly one reply. Nothing a request does, or makes
the service raise, stops the actor: a surprise is ``internal``, logged with its traceback.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import pykka

from botyard import protocol
from botyard.actors.failures import Supervised
from botyard.actors.messages import AdminWork
from botyard.actors.outbox import Outbox, Outgoing, error_reply, ok_reply
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
            reply = self._answer(w)
        except Exception:  # even building the error reply failed: a reply that cannot fail
            log.exception("admin %s: no reply could be encoded", ascii(w.verb))
            reply = error_reply(w.reply_to, w.as_json, protocol.INTERNAL, "the reply could not be encoded")
        try:
            self.outbox.send([reply])
        except Exception:
            log.exception("admin %s: the reply could not be sent", ascii(w.verb))
        return None

    def _answer(self, w: AdminWork) -> Outgoing:
        try:
            body = protocol.decode_body(w.data, w.as_json, max_bytes=protocol.MAX_ADMIN_BODY)
            if w.tenant is not None:
                body = scoped(body, w.tenant, w.verb)
            result = self.handle(w.verb, body)
            return ok_reply(w.reply_to, w.as_json, {"ok": True, "result": result})
        except BotyardError as exc:
            try:
                return error_reply(w.reply_to, w.as_json, exc.code, exc.message, **exc.fields)
            except Exception:  # a message or field that does not encode: the code alone
                log.exception("admin %s: refusal %s could not be encoded", ascii(w.verb), exc.code)
                return error_reply(w.reply_to, w.as_json, exc.code, _printable(exc.message))
        except Exception as exc:  # RecursionError, MemoryError, a bug: never let a bad request kill the actor
            log.exception("admin %s failed", ascii(w.verb))
            return error_reply(w.reply_to, w.as_json, protocol.INTERNAL, _printable(f"{type(exc).__name__}: {exc}"))


ACTING = ("promote", "rollback", "label")
"""The verbs that record who did them."""


def scoped(body: Any, tenant: str, verb: str) -> Any:
    """A tenant's admin request: its tenant and actor are the subject's (the credential that
    may publish on it is the tenant's own); a body naming another tenant is refused."""
    if not isinstance(body, dict):
        return body  # the handler refuses it with the usual error
    named = body.get("tenant")
    if named is not None and named != tenant:
        raise protocol.ProtocolError(protocol.INVALID_REQUEST, "the request's tenant is the subject's: leave 'tenant' out",
                                     field="tenant")
    return {**body, "tenant": tenant, **({"actor": f"tenant:{tenant}"} if verb in ACTING else {})}


def _printable(text: str) -> str:
    """``text`` with anything that does not encode to UTF-8 (a lone surrogate) escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
