"""A botyard node: NATS bridge + supervisor + actors + event and snapshot stores.

```python
with Node(Config.from_mapping()) as node:   # embedded nats-server unless nats_url is set
    node.wait()
```
"""

from __future__ import annotations

import gc
import logging
import secrets
import threading
import time
from typing import Any

import pykka
from nats.aio.msg import Msg

from botyard import protocol
from botyard.actors.bridge import NatsBridge
from botyard.actors.membership import Membership
from botyard.actors.messages import AdminWork, AliasChanged, Inspect, Passivate, Turns, TurnWork
from botyard.actors.outbox import error_reply
from botyard.actors.supervisor import Routing, Supervisor, Tick
from botyard.ops import stores
from botyard.ops.admin import Admin, alias_notification
from botyard.ops.config import Config
from botyard.events.activity import Activity
from botyard.ops.gc_pauses import GcPauses
from botyard.ops.heartbeat import Heartbeats
from botyard.ops.web.http import HttpServer, make_app
from botyard.ops.jobs import TrainingJobs
from botyard.ops.metrics import NodeMetrics
from botyard.ops.nats_server import EmbeddedNats

log = logging.getLogger(__name__)

TURN_SUBSCRIPTION = f"{protocol.TURN_PREFIX}.*.*"
ADMIN_SUBSCRIPTION = f"{protocol.ADMIN_PREFIX}.>"
ALIAS_SUBSCRIPTION = f"{protocol.ALIAS_PREFIX}.*.*"
HEARTBEAT_SUBJECT = "botyard.cluster.heartbeat"
DIRECT_PREFIX = "botyard.node"
QUEUE_GROUP = "botyard-nodes"


def freeze_survivors() -> None:
    """Collect the young generations (cheap), then move every survivor into the permanent
    generation: full collections stop scanning the node's imports, models and
    conversations, which are long-lived and free of cycles (a cycle that reached the old
    generation since the last freeze is kept for good: rare, and small)."""
    gc.collect(1)
    gc.freeze()


class Node:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.embedded: EmbeddedNats | None = None
        self.events = None
        self.snapshots = None
        self.admin: Admin | None = None
        self.bridge: NatsBridge | None = None
        self.supervisor = None
        self.routing: Routing | None = None
        self.nats_url = config.nats_url
        self._stopped = threading.Event()
        self._handing: dict[str, tuple[pykka.ActorRef, list[TurnWork]]] = {}
        """Turns taken in this pass of the NATS loop, by intent worker (loop thread only)."""
        self._ticker: threading.Thread | None = None
        self.membership = Membership(
            config.node_id, capacity=config.capacity, timeout=config.node_timeout, copies=config.copies,
            hot_rate=config.hot_rate, spread=config.conversation_spread,
        )
        self.turns_received = 0
        self.turns_forwarded = 0
        self.started_at = time.time()
        self.metrics = NodeMetrics()
        self.last_beat: dict[str, Any] | None = None
        """The newest heartbeat this node published (read by the metrics collector)."""
        self.http: HttpServer | None = None
        self.operator_token: str | None = None
        """The HTTP API's operator token (configured, or made in the data dir), once it serves."""
        self.gc_pauses = GcPauses()
        self.activity: Activity | None = None
        """The dashboard's projection of the event store (with the HTTP API)."""
        self.jobs: TrainingJobs | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> "Node":
        cfg = self.config
        started = time.perf_counter()
        try:
            cfg.data_dir.mkdir(parents=True, exist_ok=True)
            if not cfg.nats_url:
                self.embedded = EmbeddedNats(cfg.data_dir / "nats")
                self.nats_url = self.embedded.start()
                (cfg.data_dir / "nats.url").write_text(self.nats_url + "\n")
            self.events = stores.open_events(cfg)
            self.snapshots = stores.open_snapshots(cfg, self.nats_url)
            self.bridge = NatsBridge(
                self.nats_url.split(","), name=f"botyard-node-{cfg.node_id}", observe=self.metrics.replied if cfg.metrics else None
            )
            self.bridge.start()
            self.admin = Admin(self.events, self.snapshots, notify=self._notify, gate=cfg.gate)
            # Alias notifications first, so none is missed between rebuilding and listening.
            self.bridge.subscribe(ALIAS_SUBSCRIPTION, self._on_alias, requests=False)
            self.supervisor = Supervisor.start(
                events=self.events,
                snapshots=self.snapshots,
                outbox=self.bridge,
                admin=self.admin,
                node_id=cfg.node_id,
                workers=cfg.intent_workers,
                shards=cfg.conversation_shards,
                idle_seconds=cfg.idle_seconds,
                max_conversations=cfg.max_conversations,
                cache_bytes=cfg.model_cache_bytes,
                snapshot_every=cfg.conversation_snapshot_every,
                observe_classify=self.metrics.classify_seconds.observe if cfg.metrics else None,
            )
            self.routing = self.supervisor.proxy().get_routing().get()
            self.bridge.subscribe(HEARTBEAT_SUBJECT, self._on_heartbeat, requests=False)
            self.bridge.subscribe(f"{DIRECT_PREFIX}.{cfg.node_id}.turn.*.*", self._on_direct_turn)
            self.bridge.subscribe(TURN_SUBSCRIPTION, self._on_turn, queue=QUEUE_GROUP)
            self.bridge.subscribe(ADMIN_SUBSCRIPTION, self._on_admin, queue=QUEUE_GROUP)
            self.metrics.watch(self)
            self.gc_pauses.install()
            if cfg.http_port >= 0:
                self.http = self._serve_http()
            self._ticker = threading.Thread(target=self._tick, name="supervisor-tick", daemon=True)
            self._ticker.start()
            if cfg.gc_freeze_seconds > 0:
                gc.collect()  # once, at start: everything, then the survivors out of sight
                gc.freeze()
        except BaseException:
            self.stop()
            raise
        log.info(
            "node %s ready in %.2f s on %s, serving %s",
            cfg.node_id, time.perf_counter() - started, self.nats_url, ", ".join(self.served()) or "no bots yet",
        )
        return self

    def _tick(self) -> None:
        beats = Heartbeats(self)
        beats.beat()
        last_tick = last_freeze = time.monotonic()
        while not self._stopped.wait(self.config.heartbeat_seconds):
            try:
                beats.beat()
                self.bridge.loop.call_soon_threadsafe(self._expire)
            except Exception as exc:  # a failed heartbeat must not stop the ticking
                log.warning("heartbeat failed: %s", exc)
            sup = self.supervisor
            if sup is not None and sup.is_alive() and time.monotonic() - last_tick >= 1.0:
                last_tick = time.monotonic()
                sup.tell(Tick())
            every = self.config.gc_freeze_seconds
            if every > 0 and time.monotonic() - last_freeze >= every:
                last_freeze = time.monotonic()
                freeze_survivors()

    def _serve_http(self) -> HttpServer:
        cfg = self.config
        token = cfg.operator_token
        if not token:
            token_file = cfg.data_dir / "operator.token"
            if not token_file.exists():
                token_file.touch(mode=0o600)
                token_file.write_text(secrets.token_urlsafe(32) + "\n")
            token = token_file.read_text().strip()
        self.operator_token = token
        self.activity = Activity(self.events)
        self.jobs = TrainingJobs(cfg, self.nats_url)
        app = make_app(
            lambda: self.admin, self.metrics.exposition, token, activity=lambda: self.activity, jobs=lambda: self.jobs,
        )
        server = HttpServer(app, cfg.http_host, cfg.http_port).start()
        (cfg.data_dir / "http.url").write_text(server.url + "\n")
        log.info("admin HTTP API and /metrics on %s", server.url)
        return server

    def stop(self) -> None:
        """Graceful: stop taking turns, finish the in-flight ones, then stop everything."""
        self._stopped.set()
        self.gc_pauses.remove()
        if self.bridge is not None:
            try:
                self.bridge.publish(HEARTBEAT_SUBJECT, protocol.encode_body({"node": self.config.node_id, "draining": True}, False))
                self.bridge.stop_accepting()
            except Exception as exc:
                log.warning("draining turns failed: %s", exc)
        if self.http is not None:
            self.http.stop()
            self.http = None
        if self.jobs is not None:
            self.jobs.stop()
            self.jobs = None
        if self.supervisor is not None and self.supervisor.is_alive():
            self.supervisor.stop(block=True, timeout=15)
        self.supervisor = None
        if self.bridge is not None:
            self.bridge.stop()
            self.bridge = None
        if self.events is not None:
            self.events.close()
            self.events = None
        if self.snapshots is not None:
            stores.close(self.snapshots)
            self.snapshots = None
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None
            (self.config.data_dir / "nats.url").unlink(missing_ok=True)

    def wait(self) -> None:
        self._stopped.wait()

    def __enter__(self) -> "Node":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the turn's entry point (on the bridge's loop thread) -----------------------------

    def _on_turn(self, msg: Msg) -> None:
        """Any node may receive a turn: it answers it if it owns the conversation, else forwards it."""
        self.turns_received += 1
        received_at = time.time()
        req = self._parse(msg, msg.subject)
        if req is None:
            return
        bot_key = f"{req.tenant}/{req.bot}"
        owner = self.membership.owner_of(bot_key, f"{bot_key}/{req.conversation_id}")
        if owner == self.config.node_id:
            self._take(req, msg)
            return
        self.turns_forwarded += 1
        self.bridge.relay(
            msg, f"{DIRECT_PREFIX}.{owner}.turn.{req.tenant}.{req.bot}", timeout=10.0,
            on_no_responders=lambda: self._take(req, msg),  # the owner is gone: answer here
            on_timeout=lambda: self.bridge.respond_now([error_reply(
                msg.reply, req.as_json, protocol.UNAVAILABLE, f"node {owner} did not answer; retry with the same turn_id",
                node=owner, received_at=received_at,
            )]),
        )

    def _on_direct_turn(self, msg: Msg) -> None:
        """A turn forwarded by another node: answered here, never forwarded again."""
        parts = msg.subject.split(".")
        req = self._parse(msg, protocol.turn_subject(parts[-2], parts[-1]))
        if req is not None:
            self._take(req, msg)

    def _parse(self, msg: Msg, subject: str) -> protocol.TurnRequest | None:
        try:
            return protocol.parse_turn(subject, msg.data, msg.headers, max_text_bytes=self.config.max_text_bytes)
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

    # -- membership (on the bridge's loop thread) ----------------------------------------------

    def _on_heartbeat(self, msg: Msg) -> None:
        try:
            beat = protocol.decode_body(msg.data, False)
            changed = self.membership.heard(beat)
        except (protocol.ProtocolError, KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring a malformed heartbeat: %s", exc)
            return
        if changed:
            self._placement_changed()

    def _expire(self) -> None:
        if self.membership.expire():
            self._placement_changed()

    def _placement_changed(self) -> None:
        nodes = sorted(self.membership.members)
        log.info("placement %d: nodes %s", self.membership.version, ", ".join(nodes))
        if self.routing is not None:
            # Conversations that moved to other owners are forgotten, so a later turn here
            # rebuilds from the event log rather than writing on a stale copy. Those still
            # ours stay (a node that wrote one meanwhile, on an older view, makes our next
            # write fail the version check: it is then rebuilt and retried).
            view, me = self.membership.frozen(), self.config.node_id

            def keep(tenant: str, bot: str, conversation_id: str) -> bool:
                bot_key = f"{tenant}/{bot}"
                return view.owner_of(bot_key, f"{bot_key}/{conversation_id}") == me

            for ref in self.routing.conversations:
                ref.tell(Passivate(keep))

    def _on_admin(self, msg: Msg) -> None:
        verb = msg.subject[len(protocol.ADMIN_PREFIX) + 1 :]
        self.routing.admin.tell(AdminWork(verb, msg.data, protocol.wants_json(msg.headers), msg.reply))

    def _on_alias(self, msg: Msg) -> None:
        if self.routing is None:
            return  # still starting: the loader's first look at the event log includes this move
        try:
            b = protocol.decode_body(msg.data, False)
            change = AliasChanged(b["tenant"], b["bot"], b["alias"], b["target"], int(b["version"]))
        except (protocol.ProtocolError, KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring a malformed alias notification on %s: %s", msg.subject, exc)
            return
        self.routing.loader.tell(change)

    def _notify(self, event) -> None:
        self.bridge.publish(*alias_notification(event))

    # -- inspection (tests, CLI) --------------------------------------------------------

    def served(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for ref in self.routing.workers if self.routing else []:
            out.update(ref.proxy().served().get(timeout=10))
        return out

    def conversation_state(
        self, tenant: str, bot: str, conversation_id: str, *, activate: bool = False
    ) -> dict[str, Any] | None:
        work = TurnWork(protocol.TurnRequest(tenant, bot, conversation_id, "", False), "", 0.0)
        return self.routing.conversation_for(work).ask(Inspect(tenant, bot, conversation_id, activate), timeout=10)

    def passivate_all(self) -> int:
        return sum(ref.ask(Passivate(), timeout=10) for ref in self.routing.conversations)

    def worker_stats(self) -> dict[str, Any]:
        total: dict[str, Any] = {"refused": {}}
        for ref in list(self.routing.workers):
            try:
                for k, v in ref.proxy().stats().get(timeout=10).items():
                    total[k] = {**total[k], **v} if isinstance(v, dict) else total.get(k, 0) + v
            except pykka.ActorDeadError:
                continue
        return total

    def stats(self) -> dict[str, Any]:
        shards = []
        for ref in list(self.routing.conversations):
            try:
                shards.append(ref.proxy().stats().get(timeout=10))
            except pykka.ActorDeadError:
                continue  # died just now; the supervisor replaces it on its next tick
        return {
            "resident_conversations": sum(s["resident"] for s in shards),
            "activations": sum(s["activations"] for s in shards),
            **self.supervisor.proxy().stats().get(timeout=10),
            **self.routing.loader.proxy().stats().get(timeout=10),
            **self.worker_stats(),
            "turns_received": self.turns_received,
            "turns_forwarded": self.turns_forwarded,
        }
