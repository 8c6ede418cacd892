"""The turn stream: every committed turn, proactive message and agent answer, published
after its commit into the JetStream stream ``BOTYARD_TURNS`` on ``botyard.stream.<tenant>.<bot>``.

No actor publishes it (a node killed between a commit and a publish would lose the event):
a relay (:class:`TurnStream`, a thread of its own) tails the event store's notification
log, in commit order, and publishes on the node's bridge (``bridge.call``). Each message
carries ``Nats-Msg-Id`` (``<originator id>:<version>``), ``Botyard-Notification-Id`` (a
starting relay goes on after the one on the stream's last message) and
``Nats-Expected-Last-Sequence`` (stored only if the stream did not move since the relay
last saw it): relays of several nodes on one store cannot interleave, and the stream holds
each event once, in commit order. docs/protocol.md ("Turn stream") has the body's fields.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any
from uuid import UUID

from nats.js.api import StorageType, StreamConfig, StreamSource
from nats.js.errors import APIError, NotFoundError

from botyard.actors.bridge import NatsBridge, header_bytes
from botyard.events.conversation import Conversation
from botyard.events.store import EventStore
from botyard.events.topics import topics_of

log = logging.getLogger(__name__)

STREAM = "BOTYARD_TURNS"
SUBJECTS = "botyard.stream.>"
NOTIFICATION_HEADER = "Botyard-Notification-Id"
DUPLICATE_WINDOW = 120.0
"""Seconds JetStream remembers a ``Nats-Msg-Id`` (its default)."""
BATCH = 500
"""Notifications read (and published) per pass."""
PUBLISH_TIMEOUT = 5.0
"""Seconds one publish waits for its ack."""
RETRY_SECONDS = 2.0
"""After a failure (NATS away, no JetStream, the store unreadable), the next try comes this much later."""
LOOK_BACK = 64
"""Messages read back from the stream's end for one carrying ``Botyard-Notification-Id``."""
NAMES_CACHED = 100_000
"""Conversations whose tenant, bot and id the relay keeps (the least recently used go first)."""
EXPECTED_HEADER_BYTES = 64
"""Room for ``Nats-Expected-Last-Sequence``, added to a message's headers when it is sent."""
SMALL_FIELDS = ("kind", "tenant", "bot", "conversation_id", "turn", "seq", "version", "notification_id", "recorded_at")
"""What a message too large for the server's ``max_payload`` keeps of its body (with ``too_large``)."""
WRONG_LAST_SEQUENCE = 10071
"""JetStream's error code for a ``Nats-Expected-Last-Sequence`` that is not the stream's."""

STARTED = frozenset(topics_of(Conversation.Started))
KINDS = {
    **{t: "turn" for t in topics_of(Conversation.TurnRecorded)},
    **{t: "message" for t in topics_of(Conversation.MessageSent)},
    **{t: "agent" for t in topics_of(Conversation.AgentReplied)},
}
TOPICS = [*STARTED, *KINDS]


def stream_subject(tenant: str, bot: str) -> str:
    """``botyard.stream.<tenant>.<bot>`` (names are one subject token each)."""
    return f"botyard.stream.{tenant}.{bot}"


def tenant_stream(tenant: str) -> str:
    """The stream a tenant reads: ``BOTYARD_TURNS_<tenant>``, sourcing its subjects of
    ``BOTYARD_TURNS`` (a tenant's credential may use this stream only: docs/security.md)."""
    return f"{STREAM}_{tenant}"


def tenant_stream_config(tenant: str, max_age_days: float) -> StreamConfig:
    return StreamConfig(
        name=tenant_stream(tenant), description=f"botyard: the committed turns of tenant {tenant}",
        storage=StorageType.FILE, max_age=max_age_days * 86400.0,
        sources=[StreamSource(name=STREAM, filter_subject=f"botyard.stream.{tenant}.>")],
    )


def stream_config(max_age_days: float) -> StreamConfig:
    return StreamConfig(
        name=STREAM, description="botyard: committed turns, proactive messages and agent answers",
        subjects=[SUBJECTS], storage=StorageType.FILE, max_age=max_age_days * 86400.0, duplicate_window=DUPLICATE_WINDOW,
    )


def stream_body(kind: str, names: tuple[str, str, str], e: Any, notification_id: int) -> dict[str, Any]:
    """The JSON body of one event: ``kind`` (``turn``, ``message``, ``agent``), the
    conversation, the event's fields, its ``version`` in the conversation and its
    ``notification_id`` in the event store."""
    tenant, bot, conversation_id = names
    body: dict[str, Any] = {"kind": kind, "tenant": tenant, "bot": bot, "conversation_id": conversation_id}
    if kind == "turn":
        body.update(
            turn=e.turn, turn_id=e.turn_id, text=e.user_text, intent=e.intent, confidence=e.confidence, entities=e.entities,
            reply=e.reply, fallback=e.fallback, snapshot=e.snapshot, node=e.node, received_at=e.received_at,
            dialogue=e.dialogue,
        )
    elif kind == "message":
        body.update(seq=e.seq, message_id=e.message_id, text=e.text, source=e.source, node=e.node, at=e.at)
    else:
        body.update(text=e.text, agent=e.agent, dialogue=e.dialogue, delivered=e.delivered, node=e.node, at=e.at)
    recorded = e.timestamp.timestamp() if isinstance(e.timestamp, datetime) else None
    body.update(version=e.originator_version, notification_id=notification_id, recorded_at=recorded)
    return body


def stream_message(kind: str, names: tuple[str, str, str], e: Any, n: Any, limit: int) -> tuple[int, str, bytes, dict]:
    """(notification id, subject, body, headers) of the event of notification ``n``; a body
    that would take the message over ``limit`` bytes keeps only :data:`SMALL_FIELDS` and
    ``too_large`` (a message the server refuses would stop the stream)."""
    headers = {"Nats-Msg-Id": f"{n.originator_id}:{n.originator_version}", NOTIFICATION_HEADER: str(n.id),
               "Content-Type": "application/json"}
    body = stream_body(kind, names, e, n.id)
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    if len(data) + header_bytes(headers) > limit:
        small = {k: body[k] for k in SMALL_FIELDS if k in body} | {"too_large": len(data)}
        data = json.dumps(small, ensure_ascii=False, separators=(",", ":")).encode()
    return n.id, stream_subject(names[0], names[1]), data, headers


class _Conflict(Exception):
    """The stream moved on (another relay published): resynchronize."""


class TurnStream:
    """The relay: tails ``events``' notification log and publishes on ``bridge``."""

    def __init__(self, events: EventStore, bridge: NatsBridge, *, max_age_days: float = 7.0, poll_seconds: float = 0.05) -> None:
        self.events, self.bridge = events, bridge
        self.max_age_days, self.poll_seconds = max_age_days, poll_seconds
        self.position = 0
        """The last notification looked at (published, or not one of the stream's)."""
        self.published = 0
        """Events this relay stored in the stream (not those another relay stored first)."""
        self._seq: int | None = None
        """The stream's last sequence as this relay knows it; None: read it from the stream."""
        self._names: OrderedDict[UUID, tuple[str, str, str]] = OrderedDict()
        self._tenants: set[str] = set()
        """Tenants whose own stream this relay made or saw."""
        self._js: Any = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="turn-stream", daemon=True)
        self._last_problem = ("", 0.0)
        self._resumed = False

    def start(self) -> "TurnStream":
        self._thread.start()
        return self

    def stop(self, *, timeout: float = 2 * PUBLISH_TIMEOUT) -> None:
        """Publish what is committed by now (a last pass, when NATS answers), then stop."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def lag(self) -> int:
        """Notifications committed and not yet looked at (turns and any other events)."""
        return max(0, (self.events.recorder.max_notification_id() or 0) - self.position)

    # -- the relay's thread -------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._seq is None:
                    self._resume()
                busy = self._pass()
            except _Conflict:  # another relay is storing: let it, then go on after its last message
                self._seq = None
                self._stopping.wait(self.poll_seconds)
                continue
            except Exception as exc:  # NATS or the store: try again later, from the stream's end
                self._seq = None
                self._complain(exc)
                self._stopping.wait(RETRY_SECONDS)
                continue
            if not busy:
                self._stopping.wait(self.poll_seconds)
        self._last_pass()

    def _last_pass(self) -> None:
        deadline = time.monotonic() + PUBLISH_TIMEOUT
        try:
            while time.monotonic() < deadline:
                if self._seq is None:
                    self._resume()
                try:
                    if not self._pass():
                        return
                except _Conflict:
                    self._seq = None
                    time.sleep(self.poll_seconds)
        except Exception as exc:
            log.warning("turn stream: the last pass at stop failed (the next node's relay publishes the rest): %s", exc)

    def _complain(self, exc: BaseException) -> None:
        """Log a failure, once a minute while it stays the same."""
        text, at = self._last_problem
        if str(exc) != text or time.monotonic() - at > 60:
            log.warning("turn stream %s: %s (retrying every %.0f s)", STREAM, exc or type(exc).__name__, RETRY_SECONDS)
            self._last_problem = (str(exc), time.monotonic())

    def _resume(self) -> None:
        """Create or update the stream; position after the notification on its last message."""
        position, seq = self.bridge.call(self._head(), 3 * PUBLISH_TIMEOUT)
        top = self.events.recorder.max_notification_id() or 0
        if position is None:
            log.warning("turn stream %s: no message of %d ends with %s (expired, or not botyard's): relaying from "
                        "notification %d, the event store's end", STREAM, seq, NOTIFICATION_HEADER, top)
            position = top
        elif position > top:
            log.warning("turn stream %s is at notification %d, past this event store's end (%d): is it another "
                        "store's stream?", STREAM, position, top)
        if self._last_problem[0] or not self._resumed:
            log.info("turn stream %s: relaying after notification %d (stream sequence %d)", STREAM, position, seq)
            self._last_problem, self._resumed = ("", 0.0), True
        self.position, self._seq = position, seq

    async def _head(self) -> tuple[int | None, int]:
        """(the notification id on the stream's last botyard message, the stream's last
        sequence); ``(0, 0)`` for a stream that never held a message."""
        if self._js is None:
            self._js = self.bridge.nc.jetstream(timeout=PUBLISH_TIMEOUT)
        js, config = self._js, stream_config(self.max_age_days)
        try:
            info = await js.stream_info(STREAM)
        except NotFoundError:
            info = await js.add_stream(config)
        else:
            if info.config.subjects != config.subjects or info.config.max_age != config.max_age:
                info = await js.update_stream(config)
        last = info.state.last_seq
        for seq in range(last, max(0, last - LOOK_BACK), -1):
            try:
                msg = await js.get_msg(STREAM, seq)
            except NotFoundError:
                continue
            header = (msg.headers or {}).get(NOTIFICATION_HEADER)
            if header is not None:
                return int(header), last
        return (0 if last == 0 else None), last

    def _pass(self) -> bool:
        """Publish the next page of notifications; True when there may be more right away."""
        recorder = self.events.recorder
        top = recorder.max_notification_id() or 0
        if top <= self.position:
            return False
        page = recorder.select_notifications(self.position + 1, BATCH, stop=top, topics=TOPICS)
        items, limit = [], self.bridge.max_payload() - EXPECTED_HEADER_BYTES
        for n in page:
            e = self.events.mapper.to_domain_event(n)
            if n.topic in STARTED:
                self._remember(n.originator_id, (e.tenant, e.bot, e.conversation_id))
                continue
            items.append(stream_message(KINDS[n.topic], self._names_of(n.originator_id), e, n, limit))
        if items and not self.bridge.call(asyncio.wait_for(self._publish(items), 2 * PUBLISH_TIMEOUT), 3 * PUBLISH_TIMEOUT):
            return True
        full = len(page) == BATCH
        self.position = page[-1].id if full else top
        return full

    async def _publish(self, items: list[tuple[int, str, bytes, dict[str, str]]]) -> bool:
        """(On the bridge's loop.) The page at once, pipelined: the i-th message expects the
        stream's last sequence to be the one it had plus i, so the server stores each only
        right after the one before it, and the order of the stream is the order of the log.
        The acks are read in order; the position moves past acknowledged messages only.
        False: a message was a duplicate, and those after it were not stored."""
        js, seq = self._js, self._seq
        for tenant in {subject.split(".")[2] for _, subject, _, _ in items} - self._tenants:
            await self._tenant_stream(tenant)
        for i, (_, _, _, headers) in enumerate(items):
            headers["Nats-Expected-Last-Sequence"] = str(seq + i)
        acks = await asyncio.gather(  # (not js.publish_async: nats-py 2.16 leaves its future pending on an error reply)
            *(js.publish(subject, body, timeout=PUBLISH_TIMEOUT, stream=STREAM, headers=headers)
              for _, subject, body, headers in items),
            return_exceptions=True,
        )
        # Counted whatever came before: after a refused one, a later one may still be stored
        # (right after the same event, stored by another relay), as the chain allows.
        self.published += sum(1 for ack in acks if not isinstance(ack, BaseException) and not ack.duplicate)
        for (notification_id, *_), ack in zip(items, acks):
            if isinstance(ack, APIError) and ack.err_code == WRONG_LAST_SEQUENCE:
                raise _Conflict(str(ack))  # another relay stored messages meanwhile (or this one's ack was lost)
            if isinstance(ack, BaseException):
                raise ack
            self.position = notification_id
            if ack.duplicate:  # stored before, further back: the stream did not move, the chain of
                return False  # expected sequences after it is broken; the next pass goes on after it
            self._seq = ack.seq
        return True

    async def _tenant_stream(self, tenant: str) -> None:
        """Make the tenant's own stream if it is missing (it sources the tenant's subjects of
        ``BOTYARD_TURNS``, from the start: what was published before it is copied too)."""
        try:
            await self._js.stream_info(tenant_stream(tenant))
        except NotFoundError:
            try:
                await self._js.add_stream(tenant_stream_config(tenant, self.max_age_days))
            except APIError as exc:  # another node's relay made it meanwhile
                if "already in use" not in str(exc):
                    raise
        self._tenants.add(tenant)

    def _remember(self, originator_id: UUID, names: tuple[str, str, str]) -> tuple[str, str, str]:
        self._names[originator_id] = names
        if len(self._names) > NAMES_CACHED:
            self._names.popitem(last=False)
        return names

    def _names_of(self, originator_id: UUID) -> tuple[str, str, str]:
        """(tenant, bot, conversation id) of a conversation: cached, or read off its ``Started`` event."""
        if (names := self._names.get(originator_id)) is not None:
            self._names.move_to_end(originator_id)
            return names
        for e in self.events.events.get(originator_id, lte=1):
            return self._remember(originator_id, (e.tenant, e.bot, e.conversation_id))  # version 1: Started
        raise LookupError(f"conversation {originator_id} has no events")
