"""The snapshot-loader actor: follows alias moves and hands loaded models to intent workers.

It learns of a move two ways: a NATS notification (``botyard.alias.<tenant>.<bot>``,
sent by whoever moved the alias, for speed) and the event log itself (read every
second, for truth: a node that missed a notification, or was down, catches up; a
restarted node rebuilds every alias from the Bot aggregates' events). It loads and
verifies the new snapshot in its own thread, then tells every worker to ``Install``
it: workers never wait on a load, and turns already queued at a worker are answered
by the old model, every later one by the new. A snapshot that fails to load (corrupt,
missing) is refused and the old model keeps serving.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Callable

import pykka

from botyard.actors.messages import AliasChanged, Install, Reconcile
from botyard.errors import BotyardError
from botyard.events.store import EventStore
from botyard.models.runtime import Predictor
from botyard.snapshots.store import SnapshotStore

log = logging.getLogger(__name__)

Key = tuple[str, str, str]
RECENT = 8
"""Predictors kept after no alias names them, so switching back (a rollback) loads nothing."""


class SnapshotLoader(pykka.ThreadingActor):
    def __init__(self, events: EventStore, store: SnapshotStore, workers: Callable[[], list[pykka.ActorRef]]) -> None:
        super().__init__()
        self.events = events
        self.store = store
        self.workers = workers
        self.position = 0
        self.targets: dict[Key, tuple[int, str]] = {}
        """What each alias names, by the newest move seen: (bot version, snapshot)."""
        self.installed: dict[Key, tuple[str, Predictor]] = {}
        self.refused: dict[Key, str] = {}
        """Snapshots that failed to load, with why (logged once, retried on reconcile)."""
        self.switches = 0
        self.recent: OrderedDict[str, Predictor] = OrderedDict()

    def on_start(self) -> None:
        started = time.perf_counter()
        self.reconcile()
        log.info("aliases rebuilt from events in %.0f ms: %d served", (time.perf_counter() - started) * 1e3, len(self.installed))

    def on_receive(self, message: object) -> object:
        if isinstance(message, AliasChanged):
            self.apply((message.tenant, message.bot, message.alias), message.version, message.target)
            return None
        if isinstance(message, Reconcile):
            self.reconcile()
            return None
        raise TypeError(f"SnapshotLoader got {type(message).__name__}")

    # -- following the moves --------------------------------------------------------------------

    def reconcile(self) -> None:
        while True:
            moves, self.position = self.events.alias_moves(self.position)
            for e in moves:
                self.apply((e.tenant, e.bot, e.alias), e.originator_version, e.target)
            if not moves:
                break
        for key, (_, target) in self.targets.items():  # retry refused loads
            if self.installed.get(key, ("",))[0] != target:
                self._install(key, target)

    def apply(self, key: Key, version: int, target: str) -> None:
        known = self.targets.get(key)
        if known is not None and known[0] >= version:
            return
        self.targets[key] = (version, target)
        self._install(key, target)

    def _install(self, key: Key, snapshot_id: str) -> None:
        current = self.installed.get(key)
        if current is not None and current[0] == snapshot_id:
            return
        predictor = next((p for sid, p in self.installed.values() if sid == snapshot_id), None)
        predictor = predictor or self.recent.pop(snapshot_id, None)
        if predictor is None:
            try:
                predictor = Predictor.from_snapshot(self.store.load(snapshot_id))
            except BotyardError as exc:
                if self.refused.get(key) != snapshot_id:
                    log.error(
                        "refusing snapshot %s for %s/%s@%s: %s; still serving %s",
                        snapshot_id, *key, exc, current[0] if current else "nothing",
                    )
                self.refused[key] = snapshot_id
                return
        self.refused.pop(key, None)
        if current is not None:
            self.recent[current[0]] = current[1]
            while len(self.recent) > RECENT:
                self.recent.popitem(last=False)
        self.installed[key] = (snapshot_id, predictor)
        self.switches += 1
        for ref in self.workers():
            ref.tell(Install(key, snapshot_id, predictor))
        log.info("%s/%s@%s -> snapshot %s", *key, snapshot_id)

    # -- inspection -----------------------------------------------------------------------------

    def table(self) -> dict[Key, tuple[str, Predictor]]:
        return dict(self.installed)

    def stats(self) -> dict:
        return {"switches": self.switches, "refused": {f"{t}/{b}@{a}": s for (t, b, a), s in self.refused.items()}}
