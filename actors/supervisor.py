"""The supervisor actor: starts the node's actors, restarts dead ones, sweeps idle state.

pykka has no supervision of its own: an actor whose message handler raises on a
``tell`` logs the error and stops. On every ``Tick`` the supervisor replaces any dead
child (conversation state is rebuilt from events, models reload from the store), logs
what it died of, and counts the restart; one that keeps crashing is restarted with
exponential backoff.
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import pykka

from botyard.actors.actions import ActionCaller
from botyard.actors.administrator import Administrator
from botyard.actors.conversation import ConversationActor
from botyard.actors.failures import why
from botyard.actors.intent_worker import IntentWorker
from botyard.actors.loader import SnapshotLoader
from botyard.actors.messages import Reconcile, ReleaseHeld, Sweep, TurnWork
from botyard.actors.outbox import Outbox
from botyard.actors.quotas import Quotas
from botyard.actors.snapshotter import Snapshotter
from botyard.events.store import EventStore
from botyard.snapshots.store import SnapshotStore

log = logging.getLogger(__name__)

BACKOFF = 0.5
"""Seconds before restarting an actor that crashes again right after a restart; doubles each time."""
MAX_BACKOFF = 30.0
RESET_AFTER = 60.0
"""An actor that lived this long after its restart starts its backoff afresh."""


@dataclass(frozen=True, slots=True)
class Tick:
    """Sent by the node about once a second."""


def _slot(key: str, n: int) -> int:
    # Any str, a lone surrogate included, has a slot: a request the boundary let through by
    # mistake must not kill the actor routing it (and the turns batched with it).
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % n


@dataclass
class Routing:
    """Current actor refs; replaced element-wise by the supervisor, read by anyone."""

    workers: list[pykka.ActorRef] = field(default_factory=list)
    conversations: list[pykka.ActorRef] = field(default_factory=list)
    loaders: list[pykka.ActorRef] = field(default_factory=list)
    """One snapshot loader (a list, so it is restarted like the others)."""
    admins: list[pykka.ActorRef] = field(default_factory=list)
    """One administrator."""
    snapshotters: list[pykka.ActorRef] = field(default_factory=list)
    """One taker of conversations' aggregate snapshots."""

    @property
    def loader(self) -> pykka.ActorRef:
        return self.loaders[0]

    @property
    def admin(self) -> pykka.ActorRef:
        return self.admins[0]

    def worker_for(self, work: TurnWork) -> pykka.ActorRef:
        return self.workers[_slot(f"{work.request.tenant}/{work.request.bot}", len(self.workers))]

    def conversation_for(self, work: TurnWork) -> pykka.ActorRef:
        r = work.request
        return self.conversations[_slot(f"{r.tenant}/{r.bot}/{r.conversation_id}", len(self.conversations))]


class Supervisor(pykka.ThreadingActor):
    def __init__(
        self,
        *,
        events: EventStore,
        snapshots: SnapshotStore,
        outbox: Outbox,
        admin: Callable[[str, Any], Any],
        node_id: str,
        workers: int,
        shards: int,
        idle_seconds: float,
        max_conversations: int,
        cache_bytes: int = 1 << 30,
        snapshot_every: int = 100,
        handoff_wait: float = 3.0,
        actions: ActionCaller | None = None,
        quotas: Quotas | None = None,
        observe_classify: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__()
        self.routing = Routing()
        self.restarts = 0
        self._sweep_every = max(1.0, idle_seconds / 4)
        self._last_sweep = time.monotonic()
        self._make_loader: Callable[[], pykka.ActorRef] = lambda: SnapshotLoader.start(
            events, snapshots, lambda: list(self.routing.workers)
        )
        self._make_admin: Callable[[], pykka.ActorRef] = lambda: Administrator.start(admin, outbox)
        self._make_worker: Callable[[], pykka.ActorRef] = lambda: IntentWorker.start(
            lambda: self.routing.loader, outbox, self.routing.conversation_for, cache_bytes=cache_bytes // workers,
            observe_classify=observe_classify,
        )
        self._make_snapshotter: Callable[[], pykka.ActorRef] = lambda: Snapshotter.start(events)
        self._make_conversation: Callable[[], pykka.ActorRef] = lambda: ConversationActor.start(
            events, outbox, node_id=node_id, idle_seconds=idle_seconds,
            max_resident=max_conversations // shards,
            snapshotter=lambda: self.routing.snapshotters[0], snapshot_every=snapshot_every, handoff_wait=handoff_wait,
            actions=actions, quotas=quotas,
        )
        self._counts = (workers, shards)
        self._crashes: dict[tuple[str, int], tuple[int, float]] = {}
        """(kind, slot) -> (restarts in a row, not before this monotonic time)."""

    def on_start(self) -> None:
        workers, shards = self._counts
        self.routing.snapshotters.append(self._make_snapshotter())
        self.routing.conversations.extend(self._make_conversation() for _ in range(shards))
        self.routing.loaders.append(self._make_loader())
        self.routing.admins.append(self._make_admin())
        self.routing.workers.extend(self._make_worker() for _ in range(workers))

    def on_stop(self) -> None:
        r = self.routing
        for ref in [*r.admins, *r.workers, *r.loaders, *r.conversations, *r.snapshotters]:
            if ref.is_alive():
                ref.stop(block=True, timeout=10)

    def get_routing(self) -> Routing:
        return self.routing

    def stats(self) -> dict:
        return {"restarts": self.restarts, "workers": len(self.routing.workers), "conversations": len(self.routing.conversations)}

    def on_receive(self, message: object) -> object:
        if isinstance(message, Tick):
            self._restart_dead()
            self.routing.loader.tell(Reconcile())
            for ref in self.routing.conversations:
                ref.tell(ReleaseHeld())
            if time.monotonic() - self._last_sweep >= self._sweep_every:
                self._last_sweep = time.monotonic()
                for ref in self.routing.conversations:
                    ref.tell(Sweep())
            return None
        raise TypeError(f"Supervisor got {type(message).__name__}")

    def _restart_dead(self) -> None:
        now = time.monotonic()
        for refs, make, kind in (
            (self.routing.conversations, self._make_conversation, "conversation"),
            (self.routing.loaders, self._make_loader, "snapshot-loader"),
            (self.routing.workers, self._make_worker, "intent-worker"),
            (self.routing.admins, self._make_admin, "administrator"),
            (self.routing.snapshotters, self._make_snapshotter, "snapshotter"),
        ):
            for i, ref in enumerate(refs):
                if ref.is_alive():
                    continue
                streak, not_before = self._crashes.get((kind, i), (0, 0.0))
                if now < not_before:
                    continue  # backing off: it crashed again soon after its last restart
                if now - not_before > RESET_AFTER:
                    streak = 0
                refs[i] = make()
                self.restarts += 1
                wait = min(MAX_BACKOFF, BACKOFF * 2**streak)
                self._crashes[(kind, i)] = (streak + 1, now + wait)
                log.warning(
                    "restarted %s actor #%d, which died of %s (restart %d in a row; the next waits %.1f s)",
                    kind, i, why(ref.actor_urn), streak + 1, wait,
                )
