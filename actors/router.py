"""The turn's entry point, on the bridge's loop thread: receive, own or forward, batch, relay.

A node that has not heard its own heartbeat within the node timeout is out of the
membership (the others have dropped it: it was paused, stalled or cut off) and is fenced:
it answers every turn ``unavailable`` (the client retries, with the same turn_id, on a
node that is in) and drops its resident conversations, until it hears itself again; then
its next turns rebuild them from the event store. A backlog of turns taken in by a node
that resumes from a pause is refused this way instead of being recorded on stale state.

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
from botyard.actors.messages import AdminWork, Passivate, Reconcile, Turns, TurnWork
from botyard.actors.outbox import error_reply
from botyard.actors.quotas import RATE_LIMITED, Quotas, TurnRates

log = logging.getLogger(__name__)

FORWARD_TIMEOUT = 10.0
"""Seconds a forwarded turn waits for its owner before the client gets ``unavailable``."""


KIND_PREFIXES = {"turn": protocol.TURN_PREFIX, "agent": protocol.AGENT_PREFIX, "message": protocol.MESSAGE_PREFIX}
"""The kinds of conversation requests (the direct subject's ``<kind>``) and their public prefixes."""
PARSERS = {protocol.AGENT_PREFIX: protocol.parse_agent, protocol.MESSAGE_PREFIX: protocol.parse_message}


def _kind(req: protocol.TurnRequest) -> str:
    return "agent" if req.agent is not None else "message" if req.message is not None else "turn"


class TurnRouter:
    """Routes turns, admin requests and cluster notifications to the node's actors."""

    def __init__(self, bridge: NatsBridge, membership: Membership, *, node_id: str, max_text_bytes: int,
                 quotas: Quotas | None = None) -> None:
        self.bridge = bridge
        self.rates = TurnRates(quotas or Quotas())
        """Each tenant's turns per second (checked where a turn arrives, before anything else is done for it)."""
        self.membership = membership
        self.node_id = node_id
        self.max_text_bytes = max_text_bytes
        self.routing = None
        """The supervisor's :class:`~botyard.actors.supervisor.Routing`, once it has started."""
        self.turns_received = 0
        self.turns_forwarded = 0
        self._handing: dict[str, tuple[pykka.ActorRef, list[TurnWork]]] = {}
        """Turns taken in this pass of the loop, by intent worker."""
        self.fenced = False
        """True while this node is out of the membership (see the module's docstring)."""
        self.turns_fenced = 0

    def subscribe(self) -> None:
        """Start taking heartbeats, forwarded turns, turns and admin requests (once ``routing`` is set)."""
        b, me = self.bridge, self.node_id
        self.membership.touch_self()  # in until its first heartbeat comes back (or fails to)
        b.subscribe(protocol.HEARTBEAT_SUBJECT, self.on_heartbeat, requests=False)
        b.subscribe(f"{protocol.DIRECT_PREFIX}.{me}.turn.*.*", self.on_direct_turn)
        b.subscribe(f"{protocol.DIRECT_PREFIX}.{me}.agent.*.*", self.on_direct_turn)
        b.subscribe(f"{protocol.DIRECT_PREFIX}.{me}.message.*.*", self.on_direct_turn)
        b.subscribe(protocol.TURN_SUBSCRIPTION, self.on_turn, queue=protocol.QUEUE_GROUP)
        b.subscribe(protocol.AGENT_SUBSCRIPTION, self.on_turn, queue=protocol.QUEUE_GROUP)
        b.subscribe(protocol.MESSAGE_SUBSCRIPTION, self.on_turn, queue=protocol.QUEUE_GROUP)
        b.subscribe(protocol.ADMIN_SUBSCRIPTION, self.on_admin, queue=protocol.QUEUE_GROUP)

    # -- turns ------------------------------------------------------------------------------

    def on_turn(self, msg: Msg) -> None:
        """Any node may receive a turn (or an agent's message to a conversation): it answers it
        if it owns the conversation, else forwards it."""
        self.turns_received += 1
        received_at = time.time()
        req = self._parse(msg, msg.subject)
        if req is None or self._refused(req, msg, received_at) or self._over_rate(req, msg, received_at):
            return
        bot_key = f"{req.tenant}/{req.bot}"
        owner = self.membership.owner_of(bot_key, f"{bot_key}/{req.conversation_id}")
        if owner == self.node_id:
            self._take(req, msg)
            return
        self.turns_forwarded += 1
        self.bridge.relay(
            msg, protocol.direct_turn_subject(owner, req.tenant, req.bot, _kind(req)),
            timeout=FORWARD_TIMEOUT,
            on_no_responders=lambda: self._take(req, msg),  # the owner is gone: answer here
            on_timeout=lambda: self.bridge.respond_now([error_reply(
                msg.reply, req.as_json, protocol.UNAVAILABLE, f"node {owner} did not answer; retry with the same turn_id",
                node=owner, received_at=received_at,
            )]),
        )

    def on_direct_turn(self, msg: Msg) -> None:
        """A turn forwarded by another node: answered here, never forwarded again."""
        parts = msg.subject.split(".")
        prefix = KIND_PREFIXES.get(parts[-3], protocol.TURN_PREFIX)
        req = self._parse(msg, f"{prefix}.{parts[-2]}.{parts[-1]}")
        if req is not None and not self._refused(req, msg, time.time()):
            self._take(req, msg)

    def _over_rate(self, req: protocol.TurnRequest, msg: Msg, received_at: float) -> bool:
        """Over its tenant's turns per second: True, and answered ``rate_limited`` (``retry_after`` s)."""
        wait = self.rates.take(req.tenant, time.monotonic())
        if not wait:
            return False
        self.bridge.respond_now([error_reply(
            msg.reply, req.as_json, RATE_LIMITED,
            f"tenant {req.tenant} is over its {self.rates.quotas.of(req.tenant).turns_per_second:g} turns per second; "
            f"retry after {wait:.3f} s", retry_after=round(wait, 3), received_at=received_at,
        )])
        return True

    def _refused(self, req: protocol.TurnRequest, msg: Msg, received_at: float) -> bool:
        """The fence: True (and the turn answered ``unavailable``) while out of the membership."""
        silent = self.membership.self_silent_for()
        if silent <= self.membership.timeout or not (self.fenced or self._fence_if_not_alone(silent)):
            return False
        self.turns_fenced += 1
        self.bridge.respond_now([error_reply(
            msg.reply, req.as_json, protocol.UNAVAILABLE,
            f"node {self.node_id} is out of the membership (its own heartbeat unheard for {silent:.1f} s); "
            "retry with the same turn_id", node=self.node_id, received_at=received_at,
        )])
        return True

    def _fence_if_not_alone(self, silent: float) -> bool:
        """Fence, unless no other node is in the view: alone, nobody took its conversations
        over meanwhile (a single node whose heartbeat was late keeps serving)."""
        if len(self.membership.members) < 2:
            return False
        self._fence(silent)
        return True

    def _fence(self, silent: float) -> None:
        self.fenced = True
        log.warning(
            "node %s has not heard its own heartbeat for %.1f s (timeout %.1f s): out of the membership, "
            "refusing turns and dropping resident conversations until it hears itself again",
            self.node_id, silent, self.membership.timeout,
        )
        self._passivate_all()

    def _rejoin(self) -> None:
        self.fenced = False
        log.warning("node %s hears itself again: taking turns (%d refused meanwhile)", self.node_id, self.turns_fenced)
        self._passivate_all()  # whatever in-flight work loaded meanwhile is rebuilt afresh too

    def _passivate_all(self) -> None:
        if self.routing is not None:
            for ref in self.routing.conversations:
                ref.tell(Passivate())

    def _parse(self, msg: Msg, subject: str) -> protocol.TurnRequest | None:
        """The turn request, or None once its one error reply is on its way."""
        try:
            parse = PARSERS.get(subject.rsplit(".", 2)[0], protocol.parse_turn)
            return parse(subject, msg.data, msg.headers, max_text_bytes=self.max_text_bytes)
        except protocol.ProtocolError as exc:
            code, message, fields = exc.code, exc.message, exc.fields
        except Exception as exc:  # a bug in validation: still exactly one reply, never a lost request
            log.exception("validating a turn on %s failed", msg.subject)
            code, message, fields = protocol.INTERNAL, f"validation failed: {type(exc).__name__}", {}
        as_json = protocol.wants_json(msg.headers)
        try:
            reply = error_reply(msg.reply, as_json, code, message, received_at=time.time(), **fields)
        except Exception:  # a message or field that does not encode: the code alone
            log.exception("encoding the %s reply to a turn on %s failed", code, msg.subject)
            reply = error_reply(msg.reply, as_json, code, code, received_at=time.time())
        self.bridge.respond_now([reply])
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
        """``botyard.admin.<verb>`` (the operator's: any tenant) or ``botyard.admin.<tenant>.<verb>``
        (one tenant's: what a tenant's credential may publish; the tenant and the actor are the subject's)."""
        tenant, _, verb = msg.subject[len(protocol.ADMIN_PREFIX) + 1 :].rpartition(".")
        as_json = protocol.wants_json(msg.headers)
        try:
            self.routing.admin.tell(AdminWork(verb, msg.data, as_json, msg.reply, tenant or None))
        except pykka.ActorDeadError:  # between its death and the supervisor's next tick: still one reply
            self.bridge.respond_now([error_reply(
                msg.reply, as_json, protocol.UNAVAILABLE, "the administrator is restarting; retry",
            )])

    def on_alias(self, msg: Msg) -> None:
        """An alias moved: the loader reads the moves the event log recorded since its last
        look. The notification is only a nudge: what it says (a target, a version) is never
        taken, so a forged one moves nothing."""
        if self.routing is None:
            return  # still starting: the loader's first look at the event log includes this move
        self.routing.loader.tell(Reconcile())

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
        if self.fenced and self.membership.self_silent_for() <= self.membership.timeout:
            self._rejoin()

    def expire(self) -> None:
        """Forget nodes not heard from in time (thread-safe: scheduled on the loop)."""
        self.bridge.loop.call_soon_threadsafe(self._expire)

    def _expire(self) -> None:
        silent = self.membership.self_silent_for()
        if not self.fenced and silent > self.membership.timeout:
            self._fence_if_not_alone(silent)  # before the others are expired: they were there
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
