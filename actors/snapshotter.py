"""The snapshotter actor: takes conversations' aggregate snapshots off the turn path.

A conversation actor tells it, after a commit, which conversations reached a multiple of
the snapshot interval. The snapshotter rebuilds each from the store (from its previous
snapshot on) and records its state, so the next activation replays at most one interval
of turns. A failed snapshot costs nothing but speed: it is logged and skipped.
"""

from __future__ import annotations

import logging
from uuid import UUID

import pykka

from botyard.actors.failures import Supervised
from botyard.actors.messages import TakeSnapshot
from botyard.events.store import EventStore

log = logging.getLogger(__name__)


class Snapshotter(Supervised, pykka.ThreadingActor):
    def __init__(self, store: EventStore) -> None:
        super().__init__()
        self.store = store
        self.wanted: dict[UUID, int] = {}
        self.taken = 0
        self.failed = 0

    def on_receive(self, message: object) -> object:
        if not isinstance(message, TakeSnapshot):
            raise TypeError(f"Snapshotter got {type(message).__name__}")
        # Requests queue up while one is taken: keep only the newest version per conversation.
        self.wanted[message.aggregate_id] = max(message.version, self.wanted.get(message.aggregate_id, 0))
        if not self.actor_inbox.empty():
            return None
        wanted, self.wanted = self.wanted, {}
        for aggregate_id, version in wanted.items():
            try:
                self.store.snapshot_conversation(aggregate_id, version)
                self.taken += 1
            except Exception as exc:
                self.failed += 1
                log.warning("no snapshot of conversation %s at version %d: %s", aggregate_id, version, exc)
        return None

    def stats(self) -> dict[str, int]:
        return {"snapshots_taken": self.taken, "snapshots_failed": self.failed}
