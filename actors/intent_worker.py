"""The intent-worker actor: holds loaded snapshots and classifies utterances.

It loads the newest snapshot of every bot in the snapshot store when it starts, and
looks again (at most once a second) when a turn names a bot it does not know, so a bot
trained while the node runs is served without a restart.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import pykka

from botyard import protocol
from botyard.actors.messages import ClassifiedTurn, TurnWork
from botyard.actors.outbox import Outbox, error_reply
from botyard.errors import BotyardError
from botyard.models.runtime import Predictor
from botyard.snapshots.store import SnapshotStore

log = logging.getLogger(__name__)

RESCAN_SECONDS = 1.0


class IntentWorker(pykka.ThreadingActor):
    def __init__(
        self,
        store: SnapshotStore,
        outbox: Outbox,
        route: Callable[[TurnWork], pykka.ActorRef],
    ) -> None:
        super().__init__()
        self.store = store
        self.outbox = outbox
        self.route = route
        self.models: dict[tuple[str, str], tuple[str, Predictor]] = {}
        self._last_scan = 0.0

    def on_start(self) -> None:
        self.scan()

    def scan(self) -> list[str]:
        """Load the newest snapshot of each bot not yet loaded (or newer than loaded)."""
        self._last_scan = time.monotonic()
        newest: dict[tuple[str, str], str] = {}
        for info in self.store.list():
            newest[(info.tenant, info.bot)] = info.id  # list() is sorted by creation time
        loaded = []
        for key, snapshot_id in newest.items():
            current = self.models.get(key)
            if current and current[0] == snapshot_id:
                continue
            try:
                predictor = Predictor.from_snapshot(self.store.load(snapshot_id))
            except BotyardError as exc:
                log.error("cannot load snapshot %s of %s/%s: %s", snapshot_id, *key, exc)
                continue  # keep serving what we had
            self.models[key] = (snapshot_id, predictor)
            loaded.append(f"{key[0]}/{key[1]}@{snapshot_id}")
        if loaded:
            log.info("loaded %s", ", ".join(loaded))
        return loaded

    def served(self) -> dict[str, str]:
        return {f"{t}/{b}": sid for (t, b), (sid, _) in self.models.items()}

    def on_receive(self, message: object) -> object:
        if isinstance(message, TurnWork):
            self.classify(message)
            return None
        raise TypeError(f"IntentWorker got {type(message).__name__}")

    def classify(self, work: TurnWork) -> None:
        req = work.request
        entry = self.models.get((req.tenant, req.bot))
        if entry is None and time.monotonic() - self._last_scan > RESCAN_SECONDS:
            self.scan()
            entry = self.models.get((req.tenant, req.bot))
        if entry is None:
            if any(t == req.tenant for t, _ in self.models):
                code, what = protocol.UNKNOWN_BOT, f"tenant {req.tenant!r} has no bot {req.bot!r}"
            else:
                code, what = protocol.UNKNOWN_TENANT, f"no tenant {req.tenant!r} is served here"
            self.outbox.send([error_reply(work.reply_to, req.as_json, code, what, tenant=req.tenant, bot=req.bot)])
            return
        snapshot_id, predictor = entry
        try:
            prediction = predictor.predict(req.text)
        except Exception as exc:  # a model bug must not kill the worker
            log.exception("classify failed for %s/%s", req.tenant, req.bot)
            self.outbox.send([error_reply(work.reply_to, req.as_json, protocol.INTERNAL, f"classification failed: {exc}")])
            return
        classified = ClassifiedTurn(
            work, prediction.intent, prediction.confidence, snapshot_id, predictor.definition,
            tuple(e.to_dict() for e in prediction.entities), prediction.fallback,
        )
        self.route(work).tell(classified)
