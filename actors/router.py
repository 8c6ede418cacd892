"""The turn's entry point, on the bridge's loop thread: receive, own or forward, batch, relay.

Every handler here runs on the NATS loop thread and must only validate, decide and
``tell``: a turn whose conversation this node owns is queued for its intent worker (the
turns taken in one pass of the loop reach each worker in one message); any other is
relayed to its owner's direct subject. Heartbeats and alias notifications are read here
too, since they change where turns go and which snapshot answers them.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import pykka
from nats.aio.msg import Msg

from botyard import protocol
from botyard.actors.bridge import NatsBridge
from botyard.actors.membership import Membership
from botyard.actors.messages import AdminWork, AliasChanged, Passivate, Turns, TurnWork
from botyard.actors.outbox import error_reply

log = logging.getLogger(__name__)

FORWARD_TIMEOUT = 10.0
"""Seconds a forwarded turn waits for its owner before the client gets ``unavailable``."""


class TurnRouter:
    """Routes turns, admin requests and cluster notifications to the node's actors."""

    def __init__(self, bridge: NatsBridge, membership: Membership, *, node_id: str, max_text_bytes: int) -> None:
        self.bridge = bridge
        self.membership = membership
        self.node_id = node_id
        self.max_text_bytes = max_text_bytes
        self.routing = None
        """The supervisor's :class:`~botyard.actors.supervisor.Routing`, once it has started."""
        self.turns_received = 0
        self.turns_forwarded = 0
        self._handing: dict[str, tuple[pykka.ActorRef, list[TurnWork]]] = {}
        """Turns taken in this pass of the loop, by intent worker."""

    def subscribe(self) -> None:
        """Start taking heartbeats, forwarded turns, turns and admin requests (once ``routing`` is set)."""
        b, me = self.bridge, self.node_id
        b.subscribe(protocol.HEARTBEAT_SUBJECT, self.on_heartbeat, requests=False)
        b.subscribe(f"{protocol.DIRECT_PREFIX}.{me}.turn.*.*", self.on_direct_turn)
        b.subscribe(protocol.TURN_SUBSCRIPTION, self.on_turn, queue=protocol.QUEUE_GROUP)
        b.subscribe(protocol.ADMIN_SUBSCRIPTION, self.on_admin, queue=protocol.QUEUE_GROUP)

    # -- turns ------------------------------------------------------------------------------

    def on_turn(self, msg: Msg) -> None:
        """Any node may receive a turn: it answers it if it owns the conversation, else forwards it."""
        self.turns_received += 1
        received_at = time.time()
        req = self._parse(msg, msg.subject)
        if req is None:
            return
        bot_key = f"{req.tenant}/{req.bot}"
        owner = self.membership.owner_of(bot_key, f"{bot_key}/{req.conversation_id}")
        if owner == self.node_id:
            self._take(req, msg)
            return
        self.turns_forwarded += 1
        self.bridge.relay(
            msg, protocol.direct_turn_subject(owner, req.tenant, req.bot), timeout=FORWARD_TIMEOUT,
            on_no_responders=lambda: self._take(req, msg),  # the owner is gone: answer here
            on_timeout=lambda: self.bridge.respond_now([error_reply(
                msg.reply, req.as_json, protocol.UNAVAILABLE, f"node {owner} did not answer; retry with the same turn_id",
                node=owner, received_at=received_at,
            )]),
        )

    def on_direct_turn(self, msg: Msg) -> None:
        """A turn forwarded by another node: answered here, never forwarded again."""
        parts = msg.subject.split(".")
        req = self._parse(msg, protocol.turn_subject(parts[-2], parts[-1]))
        if req is not None:
            self._take(req, msg)

    def _parse(self, msg: Msg, subject: str) -> protocol.TurnRequest | None:
        try:
            return protocol.parse_turn(subject, msg.data, msg.headers, max_text_bytes=self.max_text_bytes)
        except protocol.ProtocolError as exc:
            as_json = protocol.wants_json(msg.headers)
            self.bridge.respond_now([error_reply(msg.reply, as_json, exc.code, exc.message, received_at=time.time(), **exc.fields)])
            return None

    def _take(self, req: protocol.TurnRequest, msg: Msg) -> None:
        """Queue the turn for its intent worker; the turns taken in one pass of the loop go
        to each worker in one message (:meth:`_hand_over`, scheduled by the first of them)."""
        work = TurnWork(req, msg.reply, time.time())
        ref = self.routing.worker_for(work)
        if not self._handing:
            self.bridge.loop.call_soon(self._hand_over)
        self._handing.setdefault(ref.actor_urn, (ref, []))[1].append(work)

    def _hand_over(self) -> None:
        handing, self._handing = self._handing, {}
        for ref, works in handing.values():
            ref.tell(Turns(tuple(works)))

    # -- admin and notifications ------------------------------------------------------------

    def on_admin(self, msg: Msg) -> None:
        verb = msg.subject[len(protocol.ADMIN_PREFIX) + 1 :]
        self.routing.admin.tell(AdminWork(verb, msg.data, protocol.wants_json(msg.headers), msg.reply))

    def on_alias(self, msg: Msg) -> None:
        if self.routing is None:
            return  # still starting: the loader's first look at the event log includes this move
        try:
            b = protocol.decode_body(msg.data, False)
            change = AliasChanged(b["tenant"], b["bot"], b["alias"], b["target"], int(b["version"]))
        except (protocol.ProtocolError, KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring a malformed alias notification on %s: %s", msg.subject, exc)
            return
        self.routing.loader.tell(change)

    # -- membership -------------------------------------------------------------------------

    def on_heartbeat(self, msg: Msg) -> None:
        try:
            beat = protocol.decode_body(msg.data, False)
            changed = self.membership.heard(beat)
        except (protocol.ProtocolError, KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring a malformed heartbeat: %s", exc)
            return
        if changed:
            self._placement_changed()

    def expire(self) -> None:
        """Forget nodes not heard from in time (thread-safe: scheduled on the loop)."""
        self.bridge.loop.call_soon_threadsafe(self._expire)

    def _expire(self) -> None:
        if self.membership.expire():
            self._placement_changed()

    def _placement_changed(self) -> None:
        nodes = sorted(self.membership.members)
        log.info("placement %d: nodes %s", self.membership.version, ", ".join(nodes))
        if self.routing is None:
            return
        # Conversations that moved to other owners are forgotten, so a later turn here
        # rebuilds from the event log rather than writing on a stale copy. Those still
        # ours stay (a node that wrote one meanwhile, on an older view, makes our next
        # write fail the version check: it is then rebuilt and retried).
        view, me = self.membership.frozen(), self.node_id
        keep: Callable[[str, str, str], bool] = lambda tenant, bot, cid: view.owner_of(  # noqa: E731
            f"{tenant}/{bot}", f"{tenant}/{bot}/{cid}"
        ) == me
        for ref in self.routing.conversations:
            ref.tell(Passivate(keep))
