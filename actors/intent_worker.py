"""The intent-worker actor: classifies utterances with the models the loader installed.

It holds, for each (tenant, bot, alias), the snapshot that alias names on this node,
as pushed by the :class:`~botyard.actors.loader.SnapshotLoader` (``Install``). It never
loads a snapshot itself, so a turn never waits on a load.
"""

from __future__ import annotations

import logging
from typing import Callable

import pykka

from botyard import protocol
from botyard.actors.messages import ClassifiedTurn, Install, TurnWork
from botyard.actors.outbox import Outbox, error_reply
from botyard.models.runtime import Predictor

log = logging.getLogger(__name__)


class IntentWorker(pykka.ThreadingActor):
    def __init__(
        self,
        loader: pykka.ActorRef,
        outbox: Outbox,
        route: Callable[[TurnWork], pykka.ActorRef],
    ) -> None:
        super().__init__()
        self.loader = loader
        self.outbox = outbox
        self.route = route
        self.models: dict[tuple[str, str, str], tuple[str, Predictor]] = {}

    def on_start(self) -> None:
        # A (re)started worker takes the loader's current table; later changes arrive as Install.
        if self.loader.is_alive():
            self.models.update(self.loader.proxy().table().get(timeout=30))

    def served(self) -> dict[str, str]:
        return {
            f"{t}/{b}" if a == protocol.DEFAULT_ALIAS else f"{t}/{b}@{a}": sid
            for (t, b, a), (sid, _) in self.models.items()
        }

    def on_receive(self, message: object) -> object:
        if isinstance(message, TurnWork):
            self.classify(message)
            return None
        if isinstance(message, Install):
            self.models[message.key] = (message.snapshot, message.predictor)
            return None
        raise TypeError(f"IntentWorker got {type(message).__name__}")

    def classify(self, work: TurnWork) -> None:
        req = work.request
        entry = self.models.get((req.tenant, req.bot, req.alias))
        if entry is None:
            self.outbox.send([self._unknown(work)])
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

    def _unknown(self, work: TurnWork):
        req = work.request
        if any((t, b) == (req.tenant, req.bot) for t, b, _ in self.models):
            code, what = protocol.UNKNOWN_ALIAS, f"{req.tenant}/{req.bot} has no alias {req.alias!r}"
        elif any(t == req.tenant for t, _, _ in self.models):
            code, what = protocol.UNKNOWN_BOT, f"tenant {req.tenant!r} has no bot {req.bot!r}"
        else:
            code, what = protocol.UNKNOWN_TENANT, f"no tenant {req.tenant!r} is served here"
        return error_reply(work.reply_to, req.as_json, code, what, tenant=req.tenant, bot=req.bot, alias=req.alias)
