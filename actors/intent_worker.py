"""The intent-worker actor: classifies utterances with models held in a byte-bounded cache.

It knows what every alias names (``Install`` from the loader) and keeps the models it
has used in a :class:`ModelCache`. A cold bot's first turn waits while the loader reads
its snapshot (``Load``/``Loaded``); other bots' turns go on meanwhile. When an alias of
a model in memory moves, the old model keeps answering until the new one is loaded, so
a switch never makes a turn wait. A snapshot that fails to load is refused: the alias
goes on answering with the model it named before, and the load is tried again on the
loader's ticks (``RetryLoads``), 1 s after the failure, then 2, 4, 5, 5 ... s, until it
succeeds (the alias then serves what it names) or the alias moves elsewhere. Meanwhile
``stats()`` shows the disagreement (``refused``, ``diverged``) and each failed retry logs.

Turns that queued while the worker was busy are taken as one batch. Those an encoder must read
(a context tier's; a cascade's that its gate sends on) go to the encoder's own thread, which
reads everything sent to it since its last pass as one batch and hands the turns back; the
worker answers the other turns meanwhile (a conversation's turns stay in order). Under load a
cascade's second model then costs what the encoder costs per utterance in batches, and its
turns no longer hold up the bag model's (``bench/cascade.py``, docs/performance.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

import pykka

from botyard import protocol
from botyard.actors.failures import Supervised
from botyard.actors.messages import Classified, ClassifiedTurn, Install, Load, Loaded, RetryLoads, Turns, TurnWork
from botyard.actors.model_cache import ModelCache
from botyard.actors.outbox import Outbox, error_reply
from botyard.models.runtime import Predictor
from botyard.models.text import tokenize
from botyard.models.tuned import TunedModel

log = logging.getLogger(__name__)

HANDOFF_BATCH = 256
"""Classified turns handed to conversation actors at the latest after this many."""
DRAIN = 256
"""Turns waiting in the inbox that the worker takes as one batch at most (:meth:`IntentWorker._waiting`)."""

Key = tuple[str, str, str]

RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 5.0
"""A refused snapshot that an alias still names is loaded again after 1 s, doubling to at most 5 s."""


@dataclass(frozen=True, slots=True)
class Encoded:
    """Turns whose utterances the encoder has read (:meth:`IntentWorker._encode`), in arrival order."""

    works: tuple[TurnWork, ...]


class IntentWorker(Supervised, pykka.ThreadingActor):
    def __init__(
        self,
        loader: Callable[[], pykka.ActorRef],
        outbox: Outbox,
        route: Callable[[TurnWork], pykka.ActorRef],
        *,
        cache_bytes: int = 1 << 30,
        observe_classify: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__()
        self.observe_classify = observe_classify
        self.loader = loader
        self.outbox = outbox
        self.route = route
        self.aliases: dict[Key, str] = {}
        self.cache: ModelCache[Predictor] = ModelCache(cache_bytes)
        self.waiting: dict[str, list[TurnWork]] = {}
        """Turns parked on a snapshot being loaded."""
        self.switching: dict[Key, str] = {}
        """Aliases whose new target is loading while the old model answers."""
        self.fallback: dict[Key, str] = {}
        """What a just-moved alias named before, in case its new target fails to load."""
        self.refused: dict[Key, str] = {}
        """Aliases that name a snapshot that failed to load (they serve ``aliases[key]`` meanwhile)."""
        self.retry: dict[str, tuple[float, float, int]] = {}
        """Refused snapshot -> (monotonic time of the next load, current delay, retries so far)."""
        self.load_retries = 0
        self.load_seconds: deque[float] = deque(maxlen=10_000)
        self.classified: dict[str, tuple[pykka.ActorRef, list[ClassifiedTurn]]] = {}
        """Turns classified and not yet handed to their conversation actor, by actor."""
        self.turns: dict[str, int] = {}
        """Turns per bot since the last look (for hot-bot detection)."""
        self.encoding: Counter[tuple[str, str, str]] = Counter()
        """Turns per conversation waiting for the encoder (a later turn of one waits behind them)."""
        self.encoder_thread: ThreadPoolExecutor | None = None
        """Runs the encoder's passes (:meth:`_encode`) one after another, off this actor's thread."""
        self.to_encode: list[tuple[tuple[TurnWork, ...], list[tuple]]] = []
        """Turns (and their utterances by encoder) that the next pass of the encoder takes, all at once."""
        self.encode_lock = threading.Lock()
        self.pass_due = False
        """A pass is scheduled that has not yet taken :attr:`to_encode`."""

    def on_start(self) -> None:
        # A (re)started worker takes the loader's table; later moves arrive as Install.
        loader = self.loader()
        if loader.is_alive():
            for key, (target, previous) in loader.proxy().table().get(timeout=30).items():
                self.aliases[key] = target
                if previous is not None:
                    self.fallback[key] = previous

    # -- messages -------------------------------------------------------------------------------

    def on_receive(self, message: object) -> object:
        if isinstance(message, Turns):
            self._turns(self._waiting(message.works))
        elif isinstance(message, Encoded):
            self._encoded(message.works)
        elif isinstance(message, Install):
            self._install(message.key, message.snapshot)
        elif isinstance(message, Loaded):
            self._loaded(message)
        elif isinstance(message, RetryLoads):
            self._retry()
        else:
            raise TypeError(f"IntentWorker got {type(message).__name__}")
        if self.classified and (
            self.actor_inbox.empty() or sum(len(turns) for _, turns in self.classified.values()) >= HANDOFF_BATCH
        ):
            self._hand_off()
        return None

    def on_stop(self) -> None:
        if self.encoder_thread is not None:
            self.encoder_thread.shutdown(wait=False, cancel_futures=True)

    def _waiting(self, works: tuple[TurnWork, ...]) -> Sequence[TurnWork]:
        """``works`` and the turns of the :class:`Turns` messages next in the inbox (up to
        :data:`DRAIN` turns in all), taken out of it: turns that queued while the worker was busy
        are classified as one batch (so the encoder reads those that need it in one batched pass).
        Stops at the first other message, which keeps its place."""
        inbox = self.actor_inbox  # a queue.Queue; only this thread takes from it
        if len(works) >= DRAIN or inbox.empty():
            return works
        taken = list(works)
        while len(taken) < DRAIN:
            with inbox.mutex:
                head = inbox.queue[0] if inbox.queue else None
            if head is None or head.reply_to is not None or not isinstance(head.message, Turns):
                break
            taken.extend(inbox.get_nowait().message.works)
        return taken

    def _turns(self, works: Sequence[TurnWork]) -> None:
        """Classify at once the turns no encoder has to read (a bag model's; a cascade's that its
        gate keeps), and send the others to the encoder's thread (:meth:`_encode`): it reads them
        in one batched pass per encoder, spread over the cores (:meth:`SentenceEncoder.prime`),
        while this actor goes on with the next turns, and hands them back (:class:`Encoded`) to be
        classified from the encoder's cache. A turn of a conversation with a turn at the encoder
        waits behind it: a conversation's turns are answered in order."""
        later: list[TurnWork] = []
        by_encoder: dict[int, tuple] = {}  # one encoder per process, and one per tuned snapshot
        for work in works:
            req = work.request
            conversation = (req.tenant, req.bot, req.conversation_id)
            reads = self._reader(work)
            if reads is None and conversation not in self.encoding:
                self.classify(work)
                continue
            later.append(work)
            self.encoding[conversation] += 1
            if reads is not None:
                by_encoder.setdefault(id(reads[0]), (reads[0], []))[1].append(reads[1])
        if later:
            with self.encode_lock:
                self.to_encode.append((tuple(later), list(by_encoder.values())))
                if self.pass_due:
                    return
                self.pass_due = True
            if self.encoder_thread is None:
                self.encoder_thread = ThreadPoolExecutor(1, thread_name_prefix="intent-encoder")
            self.encoder_thread.submit(self._encode)

    def _reader(self, work: TurnWork) -> tuple | None:
        """``(encoder, words)`` when an encoder must read the turn's utterance: its snapshot is a
        context tier, or a cascade whose gate sends the turn on (the sentence encoder, or a tuned
        model); None otherwise (or while its snapshot is not in memory)."""
        predictor = self.cache.peek(self.aliases.get(_key(work)))
        req = work.request
        if predictor is None or (predictor.fallback is None and predictor.featurizer.context is None) \
                or req.agent is not None or req.message is not None:
            return None
        words = [t.text for t in tokenize(req.text)]
        if predictor.fallback is not None:
            if not predictor.escalates(words):
                return None
            predictor = predictor.fallback  # a cascade's second model reads this one
        encoder = predictor if isinstance(predictor, TunedModel) else predictor.featurizer.context
        return None if encoder is None else (encoder, words)

    def _encode(self) -> None:
        """A pass of the encoder, on its thread: every turn sent to it since the last pass, each
        encoder's utterances as one batch (the busier the node, the larger the batch, and the less
        an utterance costs: :data:`~botyard.models.encoder.PRIME_BATCH`); then the turns go back
        to the actor, to be classified from the encoder's cache."""
        with self.encode_lock:
            jobs, self.to_encode, self.pass_due = self.to_encode, [], False
        batches: dict[int, tuple] = {}
        for _, readers in jobs:
            for encoder, utterances in readers:
                batches.setdefault(id(encoder), (encoder, []))[1].extend(utterances)
        for encoder, utterances in batches.values():
            try:
                encoder.prime(utterances)
            except Exception:  # each turn is then encoded on its own
                log.exception("batched encoding failed")
        works = tuple(work for job, _ in jobs for work in job)
        try:
            self.actor_ref.tell(Encoded(works))
        except pykka.ActorDeadError:  # stopped meanwhile: the clients' requests time out
            log.warning("intent worker stopped with %d turns at the encoder", len(works))

    def _encoded(self, works: tuple[TurnWork, ...]) -> None:
        for work in works:
            req = work.request
            conversation = (req.tenant, req.bot, req.conversation_id)
            self.encoding[conversation] -= 1
            if self.encoding[conversation] <= 0:
                del self.encoding[conversation]
            self.classify(work)

    def _hand_off(self) -> None:
        """Send each conversation actor the turns classified for it since the last hand-off."""
        batches, self.classified = self.classified, {}
        for ref, turns in batches.values():
            ref.tell(Classified(tuple(turns)))

    def _install(self, key: Key, snapshot: str) -> None:
        old = self.aliases.get(key)
        self.switching.pop(key, None)
        self.refused.pop(key, None)  # the alias names another snapshot now: stop retrying the refused one
        if old == snapshot:
            return
        if old is not None and old in self.cache and snapshot not in self.cache:
            self.switching[key] = snapshot  # hot: keep answering with the old model until the new one is in
            self._request(snapshot)
            return
        self.aliases[key] = snapshot
        if old is not None:
            self.fallback[key] = old

    def _request(self, snapshot: str, work: TurnWork | None = None) -> None:
        first = snapshot not in self.waiting
        parked = self.waiting.setdefault(snapshot, [])
        if work is not None:
            parked.append(work)
        if first:
            self.loader().tell(Load(snapshot, self.actor_ref))

    def _loaded(self, msg: Loaded) -> None:
        works = self.waiting.pop(msg.snapshot, [])
        if msg.predictor is None:
            if msg.snapshot not in self.retry:  # a failed retry logs in _retry_later
                log.error("refusing snapshot %s: %s", msg.snapshot, msg.error)
            for key in [k for k, s in self.switching.items() if s == msg.snapshot]:
                del self.switching[key]
                self.refused[key] = msg.snapshot
            for key in [k for k, s in self.aliases.items() if s == msg.snapshot and k in self.fallback]:
                self.aliases[key] = self.fallback.pop(key)
                self.refused[key] = msg.snapshot
            self._retry_later(msg)
            for work in works:
                if self.aliases.get(_key(work)) != msg.snapshot:
                    self.classify(work)  # answered by the model the alias named before
                else:
                    req = work.request
                    self.outbox.send([error_reply(
                        work.reply_to, req.as_json, protocol.UNAVAILABLE,
                        f"snapshot {msg.snapshot} of {req.tenant}/{req.bot} cannot be loaded: {msg.error}",
                        snapshot=msg.snapshot, received_at=work.received_at,
                    )])
            return
        self.load_seconds.append(msg.seconds)
        self.cache.put(msg.snapshot, msg.predictor, msg.predictor.nbytes)
        retried = self.retry.pop(msg.snapshot, None)
        for key in [k for k, s in self.refused.items() if s == msg.snapshot]:  # loaded at last: serve what it names
            del self.refused[key]
            log.warning(
                "%s now serves %s, the snapshot it names (served %s meanwhile; loaded on retry %d)",
                _name(key), msg.snapshot, self.aliases.get(key), retried[2] if retried else 0,
            )
            self.aliases[key] = msg.snapshot
        for key in [k for k, s in self.switching.items() if s == msg.snapshot]:
            del self.switching[key]
            self.aliases[key] = msg.snapshot
        # Only aliases with a fallback or a refusal have anything to clear: look at those,
        # not at every alias (10,000 bots make that a millisecond per load).
        for key in [k for k in {*self.fallback, *self.refused} if self.aliases.get(k) == msg.snapshot]:
            self.fallback.pop(key, None)
            if self.refused.get(key) == msg.snapshot:
                del self.refused[key]
        for work in works:
            self.classify(work)

    def _retry_later(self, msg: Loaded) -> None:
        """Schedule another load of a refused snapshot that an alias names, backing off."""
        keys = [k for k, s in self.refused.items() if s == msg.snapshot]
        if not keys:
            self.retry.pop(msg.snapshot, None)
            return
        _, delay, retries = self.retry.get(msg.snapshot, (0.0, RETRY_FIRST_SECONDS / 2, 0))
        delay = min(RETRY_MAX_SECONDS, delay * 2)
        self.retry[msg.snapshot] = (time.monotonic() + delay, delay, retries)
        for key in keys:
            log.warning(
                "%s names %s, which cannot be loaded (%s); serving %s instead, retry %d in %.0f s",
                _name(key), msg.snapshot, msg.error, self.aliases.get(key), retries + 1, delay,
            )

    def _retry(self) -> None:
        """On the loader's tick: load again each refused snapshot whose backoff has passed."""
        if not self.retry:
            return
        named = set(self.refused.values())
        now = time.monotonic()
        for snapshot, (at, delay, retries) in list(self.retry.items()):
            if snapshot not in named:
                del self.retry[snapshot]  # no alias names it any more
            elif at <= now and snapshot not in self.waiting:
                self.retry[snapshot] = (at, delay, retries + 1)
                self.load_retries += 1
                self._request(snapshot)

    # -- turns ----------------------------------------------------------------------------------

    def classify(self, work: TurnWork) -> None:
        req = work.request
        snapshot_id = self.aliases.get(_key(work))
        if snapshot_id is None:
            self.outbox.send([self._unknown(work)])
            return
        predictor = self.cache.get(snapshot_id)
        if predictor is None:
            self._request(snapshot_id, work)
            return
        if req.agent is not None or req.message is not None:  # nothing to classify: the conversation records it
            ref = self.route(work)
            self.classified.setdefault(ref.actor_urn, (ref, []))[1].append(
                ClassifiedTurn(work, "", 0.0, snapshot_id, predictor.definition)
            )
            return
        bot = f"{req.tenant}/{req.bot}"
        self.turns[bot] = self.turns.get(bot, 0) + 1
        try:
            started = time.perf_counter()
            prediction = predictor.predict(req.text, now=work.received_at)  # relative dates count from the turn
            if self.observe_classify is not None:
                self.observe_classify(time.perf_counter() - started)
        except Exception as exc:  # a model bug must not kill the worker
            log.exception("classify failed for %s/%s", req.tenant, req.bot)
            self.outbox.send([error_reply(
                work.reply_to, req.as_json, protocol.INTERNAL, f"classification failed: {exc}", received_at=work.received_at
            )])
            return
        classified = ClassifiedTurn(
            work, prediction.intent, prediction.confidence, snapshot_id, predictor.definition,
            tuple(e.to_dict() for e in prediction.entities), prediction.fallback, prediction.fallback_reason,
            None if prediction.score is None else round(prediction.score, 4),
        )
        ref = self.route(work)
        self.classified.setdefault(ref.actor_urn, (ref, []))[1].append(classified)

    def _unknown(self, work: TurnWork):
        req = work.request
        if any((t, b) == (req.tenant, req.bot) for t, b, _ in self.aliases):
            code, what = protocol.UNKNOWN_ALIAS, f"{req.tenant}/{req.bot} has no alias {req.alias!r}"
        elif any(t == req.tenant for t, _, _ in self.aliases):
            code, what = protocol.UNKNOWN_BOT, f"tenant {req.tenant!r} has no bot {req.bot!r}"
        else:
            code, what = protocol.UNKNOWN_TENANT, f"no tenant {req.tenant!r} is served here"
        return error_reply(
            work.reply_to, req.as_json, code, what, tenant=req.tenant, bot=req.bot, alias=req.alias,
            received_at=work.received_at,
        )

    # -- inspection (proxy calls: they bypass on_receive, so each hands off what is waiting
    # first; otherwise a batch kept back because a proxy call was next in the inbox would
    # wait for the next turn) -------------------------------------------------------------------

    def served(self) -> dict[str, str]:
        self._hand_off()
        return {
            f"{t}/{b}" if a == protocol.DEFAULT_ALIAS else f"{t}/{b}@{a}": sid for (t, b, a), sid in self.aliases.items()
        }

    def stats(self) -> dict:
        self._hand_off()
        s = self.cache.stats
        return {
            "resident_models": len(self.cache), "resident_bytes": self.cache.bytes, "cache_hits": s.hits,
            "cache_misses": s.misses, "evictions": s.evictions,
            "refused": {f"{t}/{b}@{a}": sid for (t, b, a), sid in self.refused.items()},
            "diverged": len(self.refused), "load_retries": self.load_retries,
        }

    def take_heartbeat(self) -> tuple[dict, dict[str, int], list[float]]:
        """Stats, turns per bot and cold-load times since the last call (which resets the last two)."""
        counts, self.turns = self.turns, {}
        loads = list(self.load_seconds)
        self.load_seconds.clear()
        return self.stats(), counts, loads


def _name(key: Key) -> str:
    return "{}/{}@{}".format(*key)


def _key(work: TurnWork) -> Key:
    r = work.request
    return (r.tenant, r.bot, r.alias)

