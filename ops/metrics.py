"""A node's Prometheus metrics, in a registry of its own (several nodes may share a process).

Counted where they happen: replies (by kind and code) and turn latency where the bridge
publishes them, classification time in the intent worker. Read when scraped: the model
cache, cold loads, actor restarts, NATS reconnects and in-flight turns, from the node's
last heartbeat and its bridge. No label carries a tenant or bot: their number is unbounded.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from botyard.actors.outbox import Outgoing
from botyard.ops.status import NodeStatus

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CLASSIFY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.replies = Counter(
            "botyard_replies", "Replies sent, by kind (turn, admin) and code (ok or the error code)",
            ["kind", "code"], registry=self.registry,
        )
        self.turn_seconds = Histogram(
            "botyard_turn_seconds", "Turn latency in the node: request received to reply published",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.classify_seconds = Histogram(
            "botyard_classify_seconds", "Time to classify one utterance (intent and entities)",
            buckets=CLASSIFY_BUCKETS, registry=self.registry,
        )
        self.model_load_seconds = Histogram(
            "botyard_model_load_seconds", "Cold loads: reading, verifying and preparing a snapshot",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.gc_seconds = Histogram(
            "botyard_gc_seconds", "Garbage-collector pauses of 1 ms or more, by generation (they stop every thread)",
            ["generation"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.slow_write_seconds = Histogram(
            "botyard_slow_write_seconds",
            "SQLite write transactions of 5 ms or more: whole transaction, and waiting for the writer lock",
            ["part"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self._children: dict[tuple[str, str], Any] = {}
        """Labelled counters already looked up (the lookup costs more than the increment)."""

    def replied(self, item: Outgoing) -> None:
        """Called by the bridge (on its loop thread) for every reply it publishes."""
        kind = "turn" if item.received_at else "admin"
        child = self._children.get((kind, item.code))
        if child is None:
            child = self._children[(kind, item.code)] = self.replies.labels(kind, item.code)
        child.inc()
        if item.received_at:
            self.turn_seconds.observe(time.time() - item.received_at)

    def watch(self, status: NodeStatus) -> None:
        self.registry.register(_NodeCollector(status))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _NodeCollector:
    """Figures the node already keeps, read at scrape time (no actor is asked)."""

    def __init__(self, status: NodeStatus) -> None:
        self.status = status

    def collect(self) -> Iterable[Metric]:
        status = self.status
        beat = status.last_beat or {}
        cache = beat.get("cache", {})
        for name, help_, value in (
            ("botyard_model_cache_hits", "Turns whose model was in memory", cache.get("hits", 0)),
            ("botyard_model_cache_misses", "Turns that had to wait for a model to load", cache.get("misses", 0)),
            ("botyard_model_cache_evictions", "Models dropped from memory to stay within the budget", cache.get("evictions", 0)),
            ("botyard_actor_restarts", "Actors the supervisor restarted after they died", beat.get("restarts", 0)),
            ("botyard_nats_reconnects", "Reconnections to NATS", status.reconnects),
            ("botyard_turns_received", "Turn requests received from NATS (before forwarding)", status.turns_received),
            ("botyard_turns_forwarded", "Turns forwarded to the node owning their conversation", status.turns_forwarded),
        ):
            yield CounterMetricFamily(name, help_, value=value)
        relay = status.turn_stream
        if relay is not None:
            yield CounterMetricFamily(
                "botyard_turn_stream_published", "Events this node's relay stored in the turn stream", value=relay.published
            )
            yield GaugeMetricFamily(
                "botyard_turn_stream_lag", "Event-store notifications this node's relay has not looked at yet", value=relay.lag
            )
        for name, help_, value in (
            ("botyard_models_resident", "Models in memory", beat.get("resident", 0)),
            ("botyard_model_cache_resident_bytes", "Bytes of the models in memory", beat.get("resident_bytes", 0)),
            ("botyard_turns_in_flight", "Turns received and not yet answered", status.in_flight),
            ("botyard_process_resident_bytes", "Resident memory of the node's process", beat.get("rss_bytes", 0)),
            ("botyard_cluster_members", "Nodes this node hears (itself included)", len(status.members)),
        ):
            yield GaugeMetricFamily(name, help_, value=value)
