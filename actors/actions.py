"""Calling a tenant's action over NATS, for a conversation actor that never waits on NATS.

:class:`NatsActions` runs each call as a coroutine on the bridge's loop: a request on
``botyard.action.<tenant>.<bot>.<action>`` with the same ``Botyard-Idempotency-Key`` on every
try, a try per ``timeout``, retried after a timeout or no responders with a doubling
``backoff``, the reply validated (:func:`botyard.action_protocol.decode_reply`). When the call
is over its result is told to the actor that asked, with the others that ended in the same
pass of the loop in one :class:`~botyard.actors.messages.ActionsDone` (so the actor records
them in one group commit, as it does turns that arrive together).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Protocol

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from botyard import action_protocol as wire
from botyard.actors.messages import ActionsDone
from botyard.dialogue.actions import Action, Result
from botyard.protocol import ProtocolError

if TYPE_CHECKING:
    import pykka

    from botyard.actors.bridge import NatsBridge

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """One call: where it goes and what it carries (the fields of the request body)."""

    tenant: str
    bot: str
    action: Action
    key: str
    fields: Mapping[str, Any]
    """Every request field but ``action``, ``idempotency_key`` and ``attempt``."""


class ActionCaller(Protocol):
    """The seam between the conversation actor and the bus."""

    def call(self, request: ActionRequest, reply_to: "pykka.ActorRef") -> None:
        """Start the call and return at once; ``reply_to`` is told what it came to, exactly
        once, in an ``ActionsDone`` (keyed by the request's conversation)."""


class NatsActions:
    def __init__(self, bridge: "NatsBridge") -> None:
        self.bridge = bridge
        self.calls = 0
        """Calls started (each counted once, however many tries)."""
        self._ended: dict[Any, list[tuple[tuple[str, str, str], Result]]] = {}
        """Per actor, the results of the calls that ended in this pass of the loop (loop thread only)."""

    def call(self, request: ActionRequest, reply_to: "pykka.ActorRef") -> None:
        self.calls += 1
        key = (request.tenant, request.bot, request.fields["conversation_id"])

        def finished(result: Any, error: BaseException | None) -> None:
            if error is not None:  # a bug or the loop closing: the turn still gets its failure response
                log.error("action %s call %s failed: %s", request.action.name, request.key, error)
                result = Result(wire.ERROR, error=f"node: {type(error).__name__}: {error}", key=request.key)
            if not self._ended:
                self.bridge.loop.call_soon(self._deliver)
            self._ended.setdefault(reply_to, []).append((key, result))

        self.bridge.spawn(self._call(request), finished)

    def _deliver(self) -> None:
        ended, self._ended = self._ended, {}
        for ref, results in ended.items():
            ref.tell(ActionsDone(tuple(results)))

    async def _call(self, request: ActionRequest) -> Result:
        nc = self.bridge.nc
        action = request.action
        subject = wire.action_subject(request.tenant, request.bot, action.name)
        headers = {**wire.JSON_HEADERS, wire.IDEMPOTENCY_HEADER: request.key}
        started = time.perf_counter()
        status, error, attempt = wire.TIMEOUT, "", 0
        for attempt in range(1, action.retries + 2):
            if attempt > 1:
                await asyncio.sleep(action.backoff * 2 ** (attempt - 2))
            body = wire.encode_request(action=action.name, key=request.key, attempt=attempt, sent_at=time.time(), **request.fields)
            try:
                msg = await nc.request(subject, body, timeout=action.timeout, headers=headers)  # type: ignore[union-attr]
            except NoRespondersError:
                status, error = wire.NO_RESPONDERS, f"no action serves {subject}"
                continue
            except (NatsTimeoutError, asyncio.TimeoutError):
                status, error = wire.TIMEOUT, f"no reply within {action.timeout} s"
                continue
            return self._result(request, msg.data, attempt, started)
        log.warning("action %s of %s/%s: %s after %d tries (key %s)", action.name, request.tenant, request.bot, status, attempt,
                    request.key, extra={"action": action.name, "status": status, "key": request.key, "tenant": request.tenant})
        return Result(status, error=error, key=request.key, attempts=attempt, duration_ms=_ms(started))

    @staticmethod
    def _result(request: ActionRequest, data: bytes, attempt: int, started: float) -> Result:
        try:
            reply = wire.decode_reply(data)
        except ProtocolError as exc:
            log.warning("action %s of %s/%s refused: %s", request.action.name, request.tenant, request.bot, exc.message,
                        extra={"action": request.action.name, "status": wire.REFUSED, "code": exc.code, "key": request.key,
                               "tenant": request.tenant, **{f"error_{k}": v for k, v in exc.fields.items()}})
            return Result(wire.REFUSED, error=exc.message, key=request.key, attempts=attempt, duration_ms=_ms(started))
        if reply.error is not None:
            status = wire.ERROR
            error = f"{reply.error.get('code', '')}: {reply.error.get('message', '')}"
        else:
            status, error = (wire.LATER if reply.later else wire.OK), ""
        return Result(status, reply, error, request.key, attempt, _ms(started))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
