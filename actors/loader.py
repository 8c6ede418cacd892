"""The snapshot-loader actor: follows alias moves, and loads snapshots for the workers.

It learns of a move two ways: a NATS notification (``botyard.alias.<tenant>.<bot>``,
sent by whoever moved the alias, for speed) and the event log itself (read every
second, for truth: a node that missed a notification, or was down, catches up; a
restarted node rebuilds every alias from the Bot aggregates' events). Each move goes to
every intent worker as ``Install``; a worker asks for the snapshot's content with
``Load`` when it needs it (a cold bot's first turn, or a switch of a bot it holds), and
this actor reads and verifies it in its own thread, so no worker blocks on a disk or
network read. A store that can fetch without blocking (the NATS object store's
``fetch_later``) is read that way: the bytes come back to this actor as a message and are
verified here, so not even the loader waits on the network. A snapshot that fails to
load is reported back and the worker keeps serving what it had; on every reconcile tick
this actor tells the workers to retry such loads (``RetryLoads``, each worker backing off
up to a few seconds), so a node converges to what the alias names once the bytes are good.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Callable

import pykka

from botyard.actors.failures import Supervised
from botyard.actors.messages import AliasChanged, Fetched, Install, Load, Loaded, Reconcile, RetryLoads
from botyard.errors import BotyardError
from botyard.events.store import EventStore
from botyard.models.runtime import Predictor
from botyard.snapshots.format import Snapshot, unpack
from botyard.snapshots.store import SnapshotStore

log = logging.getLogger(__name__)

VERIFIED_COPIES_BYTES = 256 << 20
"""The loader keeps the snapshots it verified, newest use last, up to this many bytes: a
model the workers evicted and need again is decoded from the verified copy (about 0.15 ms
for the example bot) instead of read and hashed again (about 1.4 ms). The copy is the one
that was verified, so bytes that rot on disk afterwards are never served; promote and
rollback still verify the stored bytes themselves."""


class VerifiedCopies:
    """Snapshots whose bytes matched their id, bounded by their size in bytes (LRU)."""

    def __init__(self, budget: int = VERIFIED_COPIES_BYTES) -> None:
        self.budget = budget
        self.held: OrderedDict[str, Snapshot] = OrderedDict()
        self.bytes = 0
        self.hits = 0

    def get(self, snapshot_id: str) -> Snapshot | None:
        snap = self.held.get(snapshot_id)
        if snap is not None:
            self.held.move_to_end(snapshot_id)
            self.hits += 1
        return snap

    def keep(self, snap: Snapshot) -> None:
        if snap.id in self.held or snap.size > self.budget:
            return
        self.held[snap.id] = snap
        self.bytes += snap.size
        while self.bytes > self.budget:
            _, old = self.held.popitem(last=False)
            self.bytes -= old.size

Key = tuple[str, str, str]


class SnapshotLoader(Supervised, pykka.ThreadingActor):
    def __init__(self, events: EventStore, store: SnapshotStore, workers: Callable[[], list[pykka.ActorRef]]) -> None:
        super().__init__()
        self.events = events
        self.store = store
        self.workers = workers
        self.position = 0
        self.targets: dict[Key, tuple[int, str]] = {}
        """What each alias names, by the newest move seen: (bot version, snapshot)."""
        self.previous: dict[Key, str] = {}
        """What each alias named before (served instead if the new target cannot be loaded)."""
        self.loads = 0
        self.failed_loads = 0
        self.verified = VerifiedCopies()

    def on_start(self) -> None:
        started = time.perf_counter()
        self.reconcile()
        log.info("aliases rebuilt from events in %.0f ms: %d", (time.perf_counter() - started) * 1e3, len(self.targets))

    def on_receive(self, message: object) -> object:
        if isinstance(message, Load):
            fetch_later = getattr(self.store, "fetch_later", None)
            if fetch_later is None or message.snapshot in self.verified.held:
                message.worker.tell(self.load(message.snapshot))
                return None
            started, me = time.perf_counter(), self.actor_ref
            fetch_later(message.snapshot, lambda data, error: me.tell(Fetched(message, data, error, started)))
            return None
        if isinstance(message, Fetched):
            message.load.worker.tell(self._loaded(message))
            return None
        if isinstance(message, AliasChanged):
            self.apply((message.tenant, message.bot, message.alias), message.version, message.target)
            return None
        if isinstance(message, Reconcile):
            self.reconcile()
            for ref in self.workers():
                try:
                    ref.tell(RetryLoads())
                except pykka.ActorDeadError:
                    continue  # the supervisor replaces it; a new worker has nothing to retry
            return None
        raise TypeError(f"SnapshotLoader got {type(message).__name__}")

    def load(self, snapshot_id: str) -> Loaded:
        started = time.perf_counter()
        try:
            snap = self.verified.get(snapshot_id) or self.store.load(snapshot_id)
            predictor = Predictor.from_snapshot(snap)
        except BotyardError as exc:
            return self._failed(snapshot_id, exc, started)
        self.verified.keep(snap)
        self.loads += 1
        return Loaded(snapshot_id, predictor, "", time.perf_counter() - started)

    def _loaded(self, fetched: Fetched) -> Loaded:
        snapshot_id = fetched.load.snapshot
        try:
            if fetched.error is not None:
                raise fetched.error
            snap = unpack(snapshot_id, fetched.data)
            predictor = Predictor.from_snapshot(snap)
        except BotyardError as exc:
            return self._failed(snapshot_id, exc, fetched.started)
        self.verified.keep(snap)
        self.loads += 1
        return Loaded(snapshot_id, predictor, "", time.perf_counter() - fetched.started)

    def _failed(self, snapshot_id: str, exc: BotyardError, started: float) -> Loaded:
        self.failed_loads += 1
        return Loaded(snapshot_id, None, f"{exc.code}: {exc}", time.perf_counter() - started)

    # -- following the moves --------------------------------------------------------------------

    def reconcile(self) -> None:
        while True:
            moves, self.position = self.events.alias_moves(self.position)
            for e in moves:
                self.apply((e.tenant, e.bot, e.alias), e.originator_version, e.target)
            if not moves:
                return

    def apply(self, key: Key, version: int, target: str) -> None:
        known = self.targets.get(key)
        if known is not None and known[0] >= version:
            return
        if known is not None:
            self.previous[key] = known[1]
        self.targets[key] = (version, target)
        for ref in self.workers():
            ref.tell(Install(key, target))

    # -- inspection -----------------------------------------------------------------------------

    def table(self) -> dict[Key, tuple[str, str | None]]:
        """For a (re)started worker: each alias's target and the one it named before."""
        return {key: (target, self.previous.get(key)) for key, (_, target) in self.targets.items()}

    def stats(self) -> dict:
        return {
            "aliases": len(self.targets), "loads": self.loads, "failed_loads": self.failed_loads,
            "verified_copy_loads": self.verified.hits,
        }
