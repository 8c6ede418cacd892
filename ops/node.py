"""A botyard node: NATS bridge + supervisor + actors + event and snapshot stores.

```python
with Node(Config.from_mapping()) as node:   # embedded nats-server unless nats_url is set
    node.wait()
```
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pykka
from nats.aio.msg import Msg

from botyard import protocol
from botyard.actors.bridge import NatsBridge
from botyard.actors.messages import AdminWork, AliasChanged, Inspect, Passivate, TurnWork
from botyard.actors.outbox import error_reply
from botyard.actors.supervisor import Routing, Supervisor, Tick
from botyard.ops import stores
from botyard.ops.admin import Admin, alias_notification
from botyard.ops.config import Config
from botyard.ops.nats_server import EmbeddedNats

log = logging.getLogger(__name__)

TURN_SUBSCRIPTION = f"{protocol.TURN_PREFIX}.*.*"
ADMIN_SUBSCRIPTION = f"{protocol.ADMIN_PREFIX}.>"
ALIAS_SUBSCRIPTION = f"{protocol.ALIAS_PREFIX}.*.*"
QUEUE_GROUP = "botyard-nodes"


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
        self._ticker: threading.Thread | None = None

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
            self.bridge = NatsBridge(self.nats_url.split(","), name=f"botyard-node-{cfg.node_id}")
            self.bridge.start()
            self.admin = Admin(self.events, self.snapshots, notify=self._notify)
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
            )
            self.routing = self.supervisor.proxy().get_routing().get()
            self.bridge.subscribe(TURN_SUBSCRIPTION, self._on_turn, queue=QUEUE_GROUP)
            self.bridge.subscribe(ADMIN_SUBSCRIPTION, self._on_admin, queue=QUEUE_GROUP)
            self._ticker = threading.Thread(target=self._tick, name="supervisor-tick", daemon=True)
            self._ticker.start()
        except BaseException:
            self.stop()
            raise
        log.info(
            "node %s ready in %.2f s on %s, serving %s",
            cfg.node_id, time.perf_counter() - started, self.nats_url, ", ".join(self.served()) or "no bots yet",
        )
        return self

    def _tick(self) -> None:
        while not self._stopped.wait(1.0):
            sup = self.supervisor
            if sup is not None and sup.is_alive():
                sup.tell(Tick())

    def stop(self) -> None:
        """Graceful: stop taking turns, finish the in-flight ones, then stop everything."""
        self._stopped.set()
        if self.bridge is not None:
            try:
                self.bridge.stop_accepting()
            except Exception as exc:
                log.warning("draining turns failed: %s", exc)
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
        received_at = time.time()
        try:
            req = protocol.parse_turn(msg.subject, msg.data, msg.headers, max_text_bytes=self.config.max_text_bytes)
        except protocol.ProtocolError as exc:
            as_json = protocol.wants_json(msg.headers)
            self.bridge.respond_now([error_reply(msg.reply, as_json, exc.code, exc.message, **exc.fields)])
            return
        work = TurnWork(req, msg.reply, received_at)
        self.routing.worker_for(work).tell(work)

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

    def _notify(self, tenant: str, bot: str, event) -> None:
        self.bridge.publish(*alias_notification(tenant, bot, event))

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
        }
