"""``botyard.actions``: serve a bot's actions from Python (docs/actions.md is the contract for any language).

```python
from botyard.actions import ActionServer

server = ActionServer("acme-shop", "support", servers="nats://127.0.0.1:4222")

@server.action("look_up_order")
async def look_up_order(call):          # a Call: the request's fields
    return {"text": f"Order {call.slots['order_number']} has shipped."}

server.serve_forever()                  # or: await server.run(); or: async with server: ...
```

Plain nats-py underneath: one subscription per action on ``botyard.action.<tenant>.<bot>.<action>``
in a queue group (``botyard-actions``), so any number of processes share the calls; each call
runs in its own task. A handler (``async def`` or a plain function, run in a thread) returns a
dict of reply fields, a :class:`Result`, a string (the text) or None (``{}``). A result is
checked with botyard's own ``decode_reply`` before it is sent: an invalid one is answered as
the error ``invalid_reply``, a handler's exception as ``action_failed``; both are logged.

Retries carry the same idempotency key. The replies to the last ``remember`` keys (default
1024; 0: off) are kept, and a repeated key gets its reply without the handler running again
(a try that comes while the first runs waits for it). Not for a key with another ``turn_id``,
``text`` or slots (a turn never recorded left its number to the next), nor after an exception.
This memory is the process's: an effect that must happen once across restarts and workers is
stored with ``call.idempotency_key`` (docs/actions.md, "Idempotency").
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import json
import logging
import signal
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Coroutine, Mapping

import nats
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from botyard import action_protocol as ap
from botyard import protocol
from botyard.errors import BotyardError, wire_error

log = logging.getLogger(__name__)

Result = ap.ActionReply
"""A reply as a dataclass: ``Result(text=..., slots={...}, clear=(...), later=True, ...)``."""
ACTION_FAILED = "action_failed"
INVALID_REPLY = "invalid_reply"


class ActionError(BotyardError):
    """The SDK's one error: ``code`` is ``no_responders``, ``timeout``, the code of a node's
    error reply (``send_message``), or ``invalid`` for a misuse of the server."""

    def __init__(self, code: str, message: str, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class Call:
    """One action request, as botyard sent it (docs/actions.md, "The request")."""

    action: str
    idempotency_key: str
    attempt: int = 1
    tenant: str = ""
    bot: str = ""
    conversation_id: str = ""
    turn: int = 0
    turn_id: str | None = None
    intent: str = ""
    confidence: float = 0.0
    entities: list[dict[str, Any]] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    form: str | None = None
    sent_at: float = 0.0

    @classmethod
    def from_wire(cls, body: Mapping[str, Any]) -> "Call":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in body.items() if k in names and (v is not None or k in ("turn_id", "form"))})

    def value(self, name: str, default: Any = None) -> Any:
        """Slot ``name`` if the conversation has it, else the first entity ``name`` of the user's text."""
        if self.slots.get(name) is not None:
            return self.slots[name]
        return next((e.get("value") for e in self.entities if e.get("entity") == name), default)


Handler = Callable[[Call], Any]


class ActionServer:
    """A tenant's bot's actions, served over NATS; see the module's docstring."""

    def __init__(
        self, tenant: str, bot: str, *, servers: str | list[str] = "nats://127.0.0.1:4222", queue: str = "botyard-actions",
        remember: int = 1024, request_timeout: float = 5.0, grace: float = 5.0, nc: nats.NATS | None = None,
        credentials: str | Path | None = None,
    ) -> None:
        """``servers``: NATS URL(s) to connect to, unless ``nc`` is a connection to use (left open
        at ``stop``); ``remember``: idempotency keys whose replies are kept (0: none);
        ``request_timeout``: seconds ``send_message`` waits; ``grace``: seconds ``stop`` lets
        running calls finish."""
        if not (protocol.NAME_RE.match(tenant) and protocol.NAME_RE.match(bot)):
            raise ActionError("invalid", f"{tenant}/{bot}: a tenant and a bot are names (letters, digits, _ and -)")
        self.tenant, self.bot = tenant, bot
        self.servers, self.queue, self.remember = servers, queue, remember
        self.credentials = credentials
        self.request_timeout, self.grace = request_timeout, grace
        self.nc = nc
        self._owns = nc is None
        self._handlers: dict[str, Handler] = {}
        self._subs: list[Any] = []
        self._calls: set[asyncio.Task] = set()
        self._background: set[asyncio.Task] = set()
        self._done: OrderedDict[tuple[str, str, bytes], bytes] = OrderedDict()
        self._running: dict[tuple[str, str, bytes], asyncio.Future] = {}

    def action(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator: serve ``name`` with the function (``async def f(call)`` or ``def f(call)``)."""
        if not ap.ACTION_NAME_RE.match(name):
            raise ActionError("invalid", f"{name!r} is not an action name (a letter, then letters, digits, _ or -)")
        if self._subs:
            raise ActionError("invalid", f"add action {name!r} before the server starts")

        def register(handler: Handler) -> Handler:
            self._handlers[name] = handler
            return handler

        return register

    async def start(self) -> "ActionServer":
        if not self._handlers:
            raise ActionError("invalid", "no actions to serve: register one with @server.action(name)")
        if self.nc is None:
            options = {}
            if self.credentials is not None:  # the tenant's credential: its nkey, and its inbox (docs/security.md)
                options = {"nkeys_seed_str": Path(self.credentials).read_text().strip(), "inbox_prefix": f"_INBOX_{self.tenant}"}
            self.nc = await nats.connect(self.servers, name=f"botyard-actions {self.tenant}/{self.bot}", **options)
        for name in self._handlers:
            cb = functools.partial(self._received, name)
            self._subs.append(await self.nc.subscribe(ap.action_subject(self.tenant, self.bot, name), queue=self.queue, cb=cb))
        await self.nc.flush()
        log.info("serving %s on %s (queue %s)", ", ".join(self._handlers), ap.action_subject(self.tenant, self.bot, "*"), self.queue)
        return self

    async def stop(self) -> None:
        """Stop taking calls, let running ones answer (``grace`` seconds), cancel background tasks, disconnect."""
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()
        if self._calls:
            await asyncio.wait(set(self._calls), timeout=self.grace)
        for task in {*self._calls, *self._background}:
            task.cancel()
        await asyncio.gather(*self._calls, *self._background, return_exceptions=True)
        if self.nc is not None and not self.nc.is_closed:
            await (self.nc.drain() if self._owns else self.nc.flush())
        if self._owns:
            self.nc = None

    async def __aenter__(self) -> "ActionServer":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run(self, *, until: asyncio.Event | None = None) -> None:
        """Serve until ``until`` is set (or the task is cancelled), then stop."""
        async with self:
            await (until or asyncio.Event()).wait()

    def serve_forever(self) -> None:
        """Serve until SIGINT or SIGTERM (blocking: a script's main)."""

        async def main() -> None:
            until = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, until.set)
            await self.run(until=until)

        asyncio.run(main())

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        """Run ``coro`` in the background (a result that comes later); the server keeps it until
        it ends, logs its exception, and cancels it at ``stop``."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background_done)
        return task

    def _background_done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def send_message(self, conversation_id: str, text: str, *, message_id: str | None = None, source: str | None = None,
                           alias: str | None = None) -> int:
        """A proactive message to the conversation (``botyard.message.<tenant>.<bot>``); returns
        its ``seq``. The same ``message_id`` again is the same message, recorded once."""
        if self.nc is None:
            raise ActionError("invalid", "the server is not started")
        body = {"conversation_id": conversation_id, "text": text, "message_id": message_id, "source": source, "alias": alias}
        data = json.dumps({k: v for k, v in body.items() if v is not None}, ensure_ascii=False).encode()
        subject = protocol.message_subject(self.tenant, self.bot)
        try:
            msg = await self.nc.request(subject, data, timeout=self.request_timeout, headers=dict(ap.JSON_HEADERS))
        except NoRespondersError:
            raise ActionError("no_responders", f"no botyard node serves {subject}") from None
        except NatsTimeoutError:
            raise ActionError("timeout", f"no reply on {subject} within {self.request_timeout} s") from None
        try:
            reply = json.loads(msg.data)
        except ValueError:
            raise ActionError("malformed", f"the reply on {subject} is not JSON") from None
        if not isinstance(reply, dict) or "error" in reply:
            err = dict(reply.get("error") or {}) if isinstance(reply, dict) else {}
            raise ActionError(str(err.pop("code", "internal")), str(err.pop("message", "")), **err)
        return int(reply["seq"])

    # -- one call ---------------------------------------------------------------------------

    async def _received(self, name: str, msg: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(name, msg))  # calls run side by side
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _serve(self, name: str, msg: Any) -> None:
        try:
            call = Call.from_wire(ap.decode_request(msg.data))
        except protocol.ProtocolError as exc:
            log.warning("action %s: refused a request on %s: %s", name, msg.subject, exc)
            return await self._reply(msg, ap.encode_reply({"error": exc.to_wire()}))
        # a key reused by a new request (its turn was never recorded: docs/actions.md, "Idempotency") is no retry
        same = json.dumps([call.turn_id, call.text, call.slots], sort_keys=True, default=str)
        key = (name, call.idempotency_key, hashlib.blake2b(same.encode(), digest_size=16).digest())
        if not self.remember:
            return await self._reply(msg, (await self._answer(name, call))[0])
        if key in self._done:
            self._done.move_to_end(key)
            return await self._reply(msg, self._done[key])
        if key in self._running:  # a retry while the first try still runs: its reply
            return await self._reply(msg, await asyncio.shield(self._running[key]))
        future = self._running[key] = asyncio.get_running_loop().create_future()
        try:
            data, keep = await self._answer(name, call)
            future.set_result(data)
        finally:
            del self._running[key]
            if not future.done():
                future.cancel()
        if keep:
            self._done[key] = data
            while len(self._done) > self.remember:
                self._done.popitem(last=False)
        await self._reply(msg, data)

    async def _answer(self, name: str, call: Call) -> tuple[bytes, bool]:
        """The reply's bytes, and whether to remember them (not after an exception)."""
        handler = self._handlers[name]
        try:
            if inspect.iscoroutinefunction(handler):
                result = await handler(call)
            else:
                result = await asyncio.to_thread(handler, call)
                if inspect.isawaitable(result):
                    result = await result
        except Exception as exc:
            log.exception("action %s failed (conversation %s, key %s)", name, call.conversation_id, call.idempotency_key)
            return ap.encode_reply({"error": wire_error(ACTION_FAILED, (str(exc) or type(exc).__name__)[:ap.MAX_TEXT])}), False
        try:
            data = ap.encode_reply(_as_dict(result))
            ap.decode_reply(data)
            return data, True
        except (BotyardError, TypeError, ValueError) as exc:
            log.error("action %s returned an invalid reply (%s): %r", name, exc, result)
            return ap.encode_reply({"error": wire_error(INVALID_REPLY, f"the action's reply is invalid: {exc}"[:ap.MAX_TEXT])}), True

    async def _reply(self, msg: Any, data: bytes) -> None:
        if msg.reply:
            await self.nc.publish(msg.reply, data, headers=dict(ap.JSON_HEADERS))


def _as_dict(result: Any) -> Mapping[str, Any]:
    if result is None:
        return {}
    if isinstance(result, str):
        return {"text": result}
    if isinstance(result, ap.ActionReply):
        return result.to_dict()
    if isinstance(result, Mapping):
        return result
    raise TypeError(f"a handler returns a dict, a Result, a string or None, not {type(result).__name__}")


__all__ = ["ActionError", "ActionServer", "Call", "Handler", "Result"]
