"""A botyard node: NATS bridge + supervisor + actors + event and snapshot stores.

```python
with Node(Config.from_mapping()) as node:   # embedded nats-server unless nats_url is set
    node.wait()
```
"""

from __future__ import annotations

import functools
import gc
import logging
import threading
import time
from typing import Any

import pykka

from botyard import protocol
from botyard.actors.actions import NatsActions
from botyard.actors.bridge import NatsBridge
from botyard.actors.membership import Membership
from botyard.actors.messages import Inspect, Passivate, TurnWork
from botyard.actors.router import TurnRouter
from botyard.actors.supervisor import Routing, Supervisor, Tick
from botyard.events.activity import Activity
from botyard.ops import stores
from botyard.ops.admin import Admin, alias_notification, handle
from botyard.ops.bus_auth import BusAuth, TenantKeys, connect_options
from botyard.ops.config import Config
from botyard.ops.gc_pauses import GcPauses, freeze_survivors
from botyard.ops.heartbeat import Heartbeats
from botyard.ops.jobs import TrainingJobs
from botyard.ops.metrics import NodeMetrics
from botyard.ops.nats_server import EmbeddedNats
from botyard.ops.status import NodeStatus
from botyard.ops.turn_stream import TurnStream
from botyard.ops.web.http import HttpServer, make_app, operator_token

log = logging.getLogger(__name__)


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
        self.router: TurnRouter | None = None
        self.nats_url = config.nats_url
        self._stopped = threading.Event()
        self._ticker: threading.Thread | None = None
        self.membership = Membership(
            config.node_id, capacity=config.capacity, timeout=config.node_timeout, copies=config.copies,
            hot_rate=config.hot_rate, spread=config.conversation_spread,
        )
        self.status = NodeStatus(config.node_id, config.capacity, time.time())
        self.metrics = NodeMetrics()
        self.http: HttpServer | None = None
        self.operator_token: str | None = None
        """The HTTP API's operator token (configured, or made in the data dir), once it serves."""
        self.gc_pauses = GcPauses()
        self.activity: Activity | None = None
        """The dashboard's projection of the event store (with the HTTP API)."""
        self.jobs: TrainingJobs | None = None
        self.bus_auth: BusAuth | None = None
        """The embedded server's users (``BOTYARD_NATS_AUTH``), rewritten as credentials come and go."""
        self.tenant_keys = TenantKeys()
        self.turn_stream: TurnStream | None = None
        self.stream_bridge: NatsBridge | None = None
        """The turn stream relay's own NATS connection (and loop thread)."""
        """The relay of committed turns into the JetStream stream (``BOTYARD_TURN_STREAM``)."""

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> "Node":
        cfg = self.config
        started = time.perf_counter()
        try:
            cfg.data_dir.mkdir(parents=True, exist_ok=True)
            self.events = stores.open_events(cfg)
            if not cfg.nats_url:
                if cfg.nats_auth:  # its users from the event log, before the server reads them
                    self.bus_auth = BusAuth(cfg.data_dir / "nats")
                    self.tenant_keys.update(self.events)
                    self.bus_auth.write(self.tenant_keys.by_tenant)
                self.embedded = EmbeddedNats(cfg.data_dir / "nats", config_file=self.bus_auth.config_file if self.bus_auth else None)
                self.nats_url = self.embedded.start()
                (cfg.data_dir / "nats.url").write_text(self.nats_url + "\n")
            self.bridge = NatsBridge(
                self.nats_url.split(","), name=f"botyard-node-{cfg.node_id}", observe=self.metrics.replied if cfg.metrics else None,
                options=connect_options(cfg, role="node"),
            )
            self.bridge.start()
            self.snapshots = stores.open_snapshots(cfg, self.nats_url, bridge=self.bridge)
            self.admin = Admin(self.events, self.snapshots, notify=self._notify, gate=cfg.gate, max_reply_bytes=self.bridge.max_payload,
                               quotas=cfg.quotas)
            self.router = TurnRouter(self.bridge, self.membership, node_id=cfg.node_id, max_text_bytes=cfg.max_text_bytes,
                                     quotas=cfg.quotas)
            self.status.nats_url, self.status.router, self.status.bridge = self.nats_url, self.router, self.bridge
            # Alias notifications first, so none is missed between rebuilding and listening.
            self.bridge.subscribe(protocol.ALIAS_SUBSCRIPTION, self.router.on_alias, requests=False)
            self.supervisor = Supervisor.start(
                events=self.events,
                snapshots=self.snapshots,
                outbox=self.bridge,
                admin=functools.partial(handle, self.admin),
                node_id=cfg.node_id,
                workers=cfg.intent_workers,
                shards=cfg.conversation_shards,
                idle_seconds=cfg.idle_seconds,
                max_conversations=cfg.max_conversations,
                cache_bytes=cfg.model_cache_bytes,
                snapshot_every=cfg.conversation_snapshot_every,
                handoff_wait=cfg.handoff_wait_seconds,
                actions=NatsActions(self.bridge),
                quotas=cfg.quotas,
                observe_classify=self.metrics.classify_seconds.observe if cfg.metrics else None,
            )
            self.routing = self.router.routing = self.supervisor.proxy().get_routing().get()
            self.status.supervisor = self.supervisor
            self.router.subscribe()
            if cfg.turn_stream:  # on a connection and loop of its own: its publishes never queue with turns
                self.stream_bridge = NatsBridge(self.nats_url.split(","), name=f"botyard-stream-{cfg.node_id}",
                                                options=connect_options(cfg, role="node"))
                self.stream_bridge.start()
                self.turn_stream = TurnStream(
                    self.events, self.stream_bridge, max_age_days=cfg.turn_stream_max_age_days,
                    poll_seconds=cfg.turn_stream_poll_seconds,
                ).start()
                self.status.turn_stream = self.turn_stream
            self.metrics.watch(self.status)
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
        cfg = self.config
        beats = Heartbeats(
            self.status, publish=self.bridge.publish, hot_rate=cfg.hot_rate, heartbeat_file=cfg.heartbeat_file,
            metrics=self.metrics, gc_pauses=self.gc_pauses, write_times=self.events.take_write_times,
        )
        beats.beat()
        last_tick = last_freeze = time.monotonic()
        while not self._stopped.wait(self.config.heartbeat_seconds):
            try:
                beats.beat()
                self.router.expire()
            except Exception as exc:  # a failed heartbeat must not stop the ticking
                log.warning("heartbeat failed: %s", exc)
            try:
                self._reload_users()
            except Exception as exc:
                log.warning("could not update the NATS users: %s", exc)
            sup = self.supervisor
            if sup is not None and sup.is_alive() and time.monotonic() - last_tick >= 1.0:
                last_tick = time.monotonic()
                sup.tell(Tick())
            every = self.config.gc_freeze_seconds
            if every > 0 and time.monotonic() - last_freeze >= every:
                last_freeze = time.monotonic()
                freeze_survivors()

    def _reload_users(self) -> None:
        """Credentials issued or revoked since the last look: rewrite the users, reload the server."""
        if self.bus_auth is None or self.embedded is None or not self.tenant_keys.update(self.events):
            return
        if self.bus_auth.write(self.tenant_keys.by_tenant):
            self.embedded.reload()
            log.info("NATS users reloaded: %d tenant credentials", sum(len(k) for k in self.tenant_keys.by_tenant.values()))

    def _serve_http(self) -> HttpServer:
        cfg = self.config
        self.operator_token = token = operator_token(cfg.operator_token, cfg.data_dir)
        self.activity = Activity(self.events)
        self.jobs = TrainingJobs(cfg, self.nats_url)
        app = make_app(
            lambda: self.admin, self.metrics.exposition, token, activity=lambda: self.activity, jobs=lambda: self.jobs,
        )
        server = HttpServer(app, cfg.http_host, cfg.http_port).start()
        self.status.http_url = server.url
        (cfg.data_dir / "http.url").write_text(server.url + "\n")
        log.info("admin HTTP API and /metrics on %s", server.url)
        return server

    def stop(self) -> None:
        """Graceful: stop taking turns, finish the in-flight ones, then stop everything."""
        self._stopped.set()
        self.gc_pauses.remove()
        if self.bridge is not None:
            try:
                draining = {"node": self.config.node_id, "draining": True}
                self.bridge.publish(protocol.HEARTBEAT_SUBJECT, protocol.encode_body(draining, False))
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
        if self.turn_stream is not None:  # after the last commit: it publishes what is committed, then stops
            self.status.turn_stream = None
            self.turn_stream.stop()
            self.turn_stream = None
        if self.stream_bridge is not None:
            self.stream_bridge.stop()
            self.stream_bridge = None
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
            "turns_received": self.status.turns_received,
            "turns_forwarded": self.status.turns_forwarded,
        }
