"""A projection of the event log for dashboards: what each bot did, second by second.

It follows the notification log (``Conversation.Started``/``TurnRecorded``,
``Bot.AliasMoved``, ``Labels.Started``/``TurnLabelled``) from the last position it read,
reading each notification through the store's mapper (so upcasters run): no aggregate is
rebuilt, nothing is written, and a projection started late catches up from the beginning.
Memory is bounded per bot (buckets kept, conversations indexed, review queue length).

Per bot it keeps: one bucket per second of turns (count, fallbacks, confidence sum,
a sample of latencies, intents), the intent totals, an index of recent conversations,
the alias moves, and the review queue: recent low-confidence or fallback turns that no
one has labelled yet.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from botyard.events.bot import Bot
from botyard.events.conversation import Conversation
from botyard.events.labels import Labels
from botyard.events.topics import topics_of

STARTED = Conversation.Started
TURN = Conversation.TurnRecorded
MOVED = Bot.AliasMoved
LABELS_STARTED = Labels.Started
LABELLED = Labels.TurnLabelled
TOPICS = topics_of(STARTED, TURN, MOVED, LABELS_STARTED, LABELLED)
PAGE = 5000
LATENCY_SAMPLES = 128
"""Latencies kept per one-second bucket (the first ones; enough for p50/p99 per point)."""


@dataclass(frozen=True, slots=True)
class ActivityLimits:
    """How much the projection keeps per bot."""

    keep_seconds: int = 3600
    """One-second buckets kept (older ones are dropped)."""
    conversations: int = 5000
    """Conversations indexed (the most recently active)."""
    review: int = 500
    """Turns kept in the review queue (the newest)."""
    low_confidence: float = 0.6
    """A turn below this confidence (or a fallback) goes to the review queue."""


@dataclass(slots=True)
class _Bucket:
    turns: int = 0
    fallbacks: int = 0
    confidence: float = 0.0
    latencies: list = field(default_factory=list)
    intents: Counter = field(default_factory=Counter)


@dataclass(slots=True)
class _BotActivity:
    buckets: "OrderedDict[int, _Bucket]" = field(default_factory=OrderedDict)
    intents: Counter = field(default_factory=Counter)
    turns: int = 0
    fallbacks: int = 0
    conversations: "OrderedDict[str, dict]" = field(default_factory=OrderedDict)
    moves: list = field(default_factory=list)
    review: "OrderedDict[str, dict]" = field(default_factory=OrderedDict)
    labelled: set = field(default_factory=set)
    last_at: float = 0.0


class Activity:
    """The dashboard's read model over one event store. Thread-safe; call :meth:`catch_up`
    (the query methods do) to read what was recorded since the last call."""

    def __init__(self, store, limits: ActivityLimits = ActivityLimits()) -> None:
        self.store = store
        self.limits = limits
        self.position = 0
        self._lock = threading.Lock()
        self._bots: dict[tuple[str, str], _BotActivity] = {}
        self._owners: dict[UUID, tuple[str, str, str]] = {}
        """Conversation aggregate id -> (tenant, bot, conversation id)."""
        self._label_owners: dict[UUID, tuple[str, str]] = {}

    # -- following the log ----------------------------------------------------------------------

    def catch_up(self) -> int:
        """Read every notification recorded since the last call; returns how many were applied."""
        with self._lock:
            read = self.store.mapper.to_domain_event
            applied = 0
            while True:
                page = self.store.recorder.select_notifications(self.position + 1, PAGE, topics=TOPICS)
                for n in page:
                    e = read(n)
                    self._apply(type(e), n.originator_id, vars(e), n.originator_version)
                applied += len(page)
                if page:
                    self.position = page[-1].id
                if len(page) < PAGE:
                    return applied

    def _apply(self, kind: type, originator: UUID, state: dict, version: int) -> None:
        """``state``: the event's fields (upcast), by name."""
        if kind is TURN:
            owner = self._owners.get(originator)
            if owner is not None:
                self._turn(owner, state)
        elif kind is STARTED:
            self._owners[originator] = (state["tenant"], state["bot"], state["conversation_id"])
        elif kind is MOVED:
            self._bot((state["tenant"], state["bot"])).moves.append({
                "alias": state["alias"], "previous": state["previous"], "target": state["target"],
                "kind": state["kind"], "actor": state["actor"], "reason": state["reason"],
                "at": _seconds(state.get("timestamp")), "version": version,
            })
        elif kind is LABELS_STARTED:
            self._label_owners[originator] = (state["tenant"], state["bot"])
        elif kind is LABELLED:
            key = self._label_owners.get(originator)
            if key is not None:
                ref = f"{state['conversation_id']}#{state['turn']}"
                bot = self._bot(key)
                bot.labelled.add(ref)
                bot.review.pop(ref, None)

    def _bot(self, key: tuple[str, str]) -> _BotActivity:
        found = self._bots.get(key)
        if found is None:
            found = self._bots[key] = _BotActivity()
        return found

    def _turn(self, owner: tuple[str, str, str], s: dict) -> None:
        tenant, bot_name, conversation_id = owner
        bot = self._bot((tenant, bot_name))
        at = float(s["received_at"])
        recorded = _seconds(s.get("timestamp")) or at
        latency_ms = max(0.0, (recorded - at) * 1000.0)
        second = int(at)
        bucket = bot.buckets.get(second)
        if bucket is None:
            bucket = bot.buckets[second] = _Bucket()
            if len(bot.buckets) > 1 and second < next(reversed(bot.buckets)):
                bot.buckets = OrderedDict(sorted(bot.buckets.items()))  # rare: a late writer
            cutoff = second - self.limits.keep_seconds
            while bot.buckets and next(iter(bot.buckets)) < cutoff:
                bot.buckets.popitem(last=False)
        intent, fallback, confidence = s["intent"], bool(s["fallback"]), float(s["confidence"])
        bucket.turns += 1
        bucket.fallbacks += fallback
        bucket.confidence += confidence
        bucket.intents[intent] += 1
        if len(bucket.latencies) < LATENCY_SAMPLES:
            bucket.latencies.append(latency_ms)
        bot.turns += 1
        bot.fallbacks += fallback
        bot.intents[intent] += 1
        bot.last_at = max(bot.last_at, at)

        entry = bot.conversations.pop(conversation_id, None) or {"conversation_id": conversation_id, "started_at": at}
        entry.update(turns=s["turn"], last_at=at, last_text=s["user_text"], last_intent=intent, snapshot=s["snapshot"])
        bot.conversations[conversation_id] = entry
        if len(bot.conversations) > self.limits.conversations:
            bot.conversations.popitem(last=False)

        ref = f"{conversation_id}#{s['turn']}"
        if (fallback or confidence < self.limits.low_confidence) and ref not in bot.labelled:
            bot.review[ref] = {
                "conversation_id": conversation_id, "turn": s["turn"], "user_text": s["user_text"], "intent": intent,
                "confidence": confidence, "fallback": fallback, "snapshot": s["snapshot"], "received_at": at,
            }
            if len(bot.review) > self.limits.review:
                bot.review.popitem(last=False)

    # -- queries ------------------------------------------------------------------------------------

    def bots(self) -> list[dict[str, Any]]:
        """Every bot with recorded turns or alias moves."""
        self.catch_up()
        with self._lock:
            return [
                {"tenant": t, "bot": b, "turns": a.turns, "last_at": a.last_at or None}
                for (t, b), a in sorted(self._bots.items())
            ]

    def stats(self, tenant: str, bot: str, *, since: float, until: float, step: int = 1) -> dict[str, Any]:
        """The bot's series over ``[since, until)`` in points of ``step`` seconds, the intent
        totals of that window and of all time, and the alias moves (the snapshot timeline)."""
        self.catch_up()
        step = max(1, int(step))
        start, stop = int(since) // step * step, int(until)
        with self._lock:
            a = self._bots.get((tenant, bot)) or _BotActivity()
            points: dict[int, _Bucket] = {}
            window_intents: Counter = Counter()
            for second, b in a.buckets.items():
                if start <= second < stop:
                    p = points.setdefault(second // step * step, _Bucket())
                    p.turns += b.turns
                    p.fallbacks += b.fallbacks
                    p.confidence += b.confidence
                    p.latencies.extend(b.latencies)
                    window_intents.update(b.intents)
            series = []
            for t in range(start, stop, step):
                p = points.get(t)
                if p is None or not p.turns:
                    series.append({"t": t, "turns_per_s": 0.0, "turns": 0, "p50_ms": None, "p99_ms": None,
                                   "fallback_rate": None, "confidence": None})
                    continue
                series.append({
                    "t": t, "turns": p.turns, "turns_per_s": p.turns / step,
                    "p50_ms": _quantile(p.latencies, 0.50), "p99_ms": _quantile(p.latencies, 0.99),
                    "fallback_rate": p.fallbacks / p.turns, "confidence": p.confidence / p.turns,
                })
            return {
                "tenant": tenant, "bot": bot, "since": start, "until": stop, "step": step, "series": series,
                "window": {"turns": sum(window_intents.values()), "intents": dict(window_intents.most_common())},
                "total": {"turns": a.turns, "fallbacks": a.fallbacks, "intents": dict(a.intents.most_common())},
                "moves": list(a.moves),
                "position": self.position,
            }

    def conversations(self, tenant: str, bot: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """The most recently active conversations, newest first."""
        self.catch_up()
        with self._lock:
            a = self._bots.get((tenant, bot))
            if a is None:
                return []
            out = []
            for entry in reversed(a.conversations.values()):
                out.append(dict(entry))
                if len(out) >= limit:
                    break
            return out

    def review(self, tenant: str, bot: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """Unlabelled low-confidence and fallback turns, lowest confidence first."""
        self.catch_up()
        with self._lock:
            a = self._bots.get((tenant, bot))
            items = list(a.review.values()) if a else []
        return sorted(items, key=lambda r: (not r["fallback"], r["confidence"]))[:limit]


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def _seconds(when: Any) -> float:
    return when.timestamp() if isinstance(when, datetime) else 0.0
