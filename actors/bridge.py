"""The one place pykka threads meet asyncio: a thread that owns the NATS connection.

Actors never await NATS: they hand replies to :meth:`NatsBridge.send`, which schedules
the publishes on the bridge's event loop and returns at once. Incoming messages are
handled by plain functions on the loop thread, which must only validate and ``tell``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Awaitable, Callable, Sequence

import nats
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from botyard.actors.outbox import Outgoing, too_large_reply

log = logging.getLogger(__name__)

JSON_HEADERS = {"Content-Type": "application/json"}
DEFAULT_MAX_PAYLOAD = 1024 * 1024
"""nats-server's default ``max_payload``, until the server's INFO says otherwise."""


def header_bytes(headers: dict[str, str] | None) -> int:
    """The size of ``headers`` on the wire (``NATS/1.0``, a line each, a blank line): the
    server counts them against ``max_payload`` with the body."""
    if not headers:
        return 0
    return len(b"NATS/1.0\r\n") + sum(len(k.encode()) + len(v.encode()) + 4 for k, v in headers.items()) + 2
Handler = Callable[[Msg], None]


class NatsBridge:
    """Runs an asyncio loop in a daemon thread with one nats-py connection."""

    def __init__(
        self, servers: Sequence[str], *, name: str = "botyard", observe: Callable[[Outgoing], None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.servers = list(servers)
        self.options = dict(options or {})
        """More ``nats.connect`` options: credentials (``nkeys_seed_str``), ``inbox_prefix``."""
        self.observe = observe
        """Called with every reply published (metrics)."""
        self.name = name
        self.loop = asyncio.new_event_loop()
        self.nc: nats.NATS | None = None
        self.in_flight = 0
        """Accepted requests not yet answered (touched only on the loop thread)."""
        self.reconnects = 0
        self._thread = threading.Thread(target=self._run, name="nats-bridge", daemon=True)
        self._subs: list[Any] = []
        self._closing = False

    # -- lifecycle ----------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Awaitable[Any], timeout: float | None = 30.0) -> Any:
        """Run a coroutine on the loop from another (non-actor) thread and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def spawn(self, coro: Awaitable[Any], done: Callable[[Any, BaseException | None], None]) -> None:
        """Run a coroutine on the loop and return at once (thread-safe); ``done(result, error)``
        is called on the loop thread when it ends, so it must only ``tell`` or schedule."""

        def finished(future: Any) -> None:
            error = future.exception()
            done(None, error) if error is not None else done(future.result(), None)

        asyncio.run_coroutine_threadsafe(coro, self.loop).add_done_callback(finished)

    def start(self, *, timeout: float = 10.0) -> None:
        self._thread.start()

        async def reconnected() -> None:
            self.reconnects += 1
            log.warning("reconnected to NATS at %s", self.nc.connected_url.netloc if self.nc else "?")

        async def disconnected() -> None:
            if not self._closing:
                log.warning("disconnected from NATS")

        async def error(exc: Exception) -> None:
            log.warning("NATS error: %s", exc)

        self.nc = self.call(
            nats.connect(
                servers=self.servers,
                name=self.name,
                connect_timeout=timeout,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.25,
                reconnected_cb=reconnected,
                disconnected_cb=disconnected,
                error_cb=error,
                pending_size=8 * 1024 * 1024,
                **self.options,
            ),
            timeout + 5,
        )

    def max_payload(self) -> int:
        """The largest message the server takes (from its INFO; it may change on reconnect)."""
        nc = self.nc
        return nc.max_payload if nc is not None else DEFAULT_MAX_PAYLOAD

    def subscribe(self, subject: str, handler: Handler, *, queue: str = "", requests: bool = True) -> None:
        """Call ``handler`` on the loop thread for each message.

        With ``requests`` every message counts as in flight until one reply is sent
        for it (the drain on stop waits for them); plain notifications pass ``False``.
        """

        async def cb(msg: Msg) -> None:
            if not requests:
                try:
                    handler(msg)
                except Exception:
                    log.exception("handler for %s failed", msg.subject)
                return
            self.in_flight += 1
            try:
                handler(msg)
            except Exception:
                self.in_flight -= 1
                log.exception("handler for %s failed", msg.subject)

        async def sub() -> None:
            self._subs.append(await self.nc.subscribe(subject, queue=queue, cb=cb, pending_msgs_limit=1_000_000))

        self.call(sub())

    def stop_accepting(self, *, timeout: float = 10.0) -> None:
        """Unsubscribe every handler, then wait until in-flight requests are answered."""

        async def unsubscribe() -> None:
            for sub in self._subs:
                await sub.unsubscribe()
            self._subs.clear()

        async def wait_idle() -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while self.in_flight > 0 and loop.time() < deadline:
                await asyncio.sleep(0.01)

        if self.nc and not self.nc.is_closed:
            self.call(unsubscribe())
            self.call(wait_idle(), timeout + 5)

    def stop(self) -> None:
        self._closing = True
        if self.nc is not None and not self.nc.is_closed:
            try:
                self.call(self.nc.drain(), 10)
            except Exception as exc:  # closing anyway
                log.warning("NATS drain failed: %s", exc)
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        self.loop.close()

    def relay(
        self, msg: Msg, subject: str, *, timeout: float, on_no_responders: Callable[[], None], on_timeout: Callable[[], None]
    ) -> None:
        """(On the loop thread.) Forward a request to ``subject`` and pass its reply back.

        The request stays in flight until the reply is relayed. When nobody listens on
        ``subject`` (the node there is gone) ``on_no_responders`` handles it instead.
        """

        async def go() -> None:
            try:
                reply = await self.nc.request(subject, msg.data, timeout=timeout, headers=msg.headers)
            except NoRespondersError:
                on_no_responders()
                return
            except NatsTimeoutError:
                on_timeout()
                return
            self.in_flight -= 1
            if msg.reply:
                try:
                    await self.nc.publish(msg.reply, reply.data, headers=reply.headers)
                except Exception as exc:
                    log.warning("relayed reply to %s lost: %s", msg.reply, exc)

        self.loop.create_task(go())

    # -- replies (the Outbox) -----------------------------------------------------------

    def publish(self, subject: str, body: bytes) -> None:
        """Publish a notification (not a reply); thread-safe, returns at once."""

        async def go() -> None:
            try:
                await self.nc.publish(subject, body)
            except Exception as exc:
                log.warning("publish to %s lost: %s", subject, exc)

        self.loop.call_soon_threadsafe(lambda: self.loop.create_task(go()))

    def send(self, items: Sequence[Outgoing]) -> None:
        """Publish replies; thread-safe, returns at once."""
        self.loop.call_soon_threadsafe(self._publish_now, items)

    def respond_now(self, items: Sequence[Outgoing]) -> None:
        """Like :meth:`send`, for callers already on the loop thread."""
        self._publish_now(items)

    def _publish_now(self, items: Sequence[Outgoing]) -> None:
        self.loop.create_task(self._publish(items))

    async def _publish(self, items: Sequence[Outgoing]) -> None:
        nc = self.nc
        observe = self.observe
        for item in items:
            if item.reply:
                self.in_flight -= 1
            headers = JSON_HEADERS if item.as_json else None
            # The last line: a reply the server would refuse becomes one reply_too_large error.
            size, limit = len(item.body) + header_bytes(headers), nc.max_payload
            if size > limit:
                log.warning("reply to %s is %d bytes, over max_payload %d: answered reply_too_large", item.subject, size, limit)
                item = too_large_reply(item, size, limit)
            if observe is not None and item.reply:
                observe(item)
            if not item.subject:
                continue  # a request with no reply subject (plain publish): nothing to answer
            try:
                await nc.publish(item.subject, item.body, headers=headers)
            except Exception as exc:
                log.warning("reply to %s lost: %s", item.subject, exc)
