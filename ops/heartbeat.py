"""A node's heartbeat: published for the other nodes' membership views, and written to a
file (``BOTYARD_HEARTBEAT_FILE``) for liveness probes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import pykka

from botyard import protocol
from botyard.ops.gc_pauses import GcPauses
from botyard.ops.metrics import NodeMetrics
from botyard.ops.status import NodeStatus

LOADS_REPORTED = 500
"""Cold-load times (ms) since the last heartbeat, at most this many."""
HOT_REPORTED = 20
"""At most this many hot bots in one heartbeat (the list stays small however many bots)."""


class Heartbeats:
    """Builds, publishes and records one heartbeat per :meth:`beat` (on the node's ticker thread)."""

    def __init__(
        self,
        status: NodeStatus,
        *,
        publish: Callable[[str, bytes], None],
        hot_rate: float,
        heartbeat_file: str | None,
        metrics: NodeMetrics,
        gc_pauses: GcPauses,
        write_times: Callable[[], list[tuple[float, float]]],
    ) -> None:
        self.status = status
        self.publish = publish
        self.hot_rate = hot_rate
        self.heartbeat_file = heartbeat_file
        self.metrics = metrics
        self.gc_pauses = gc_pauses
        self.write_times = write_times
        self.last = time.monotonic()
        self.last_received = status.turns_received

    def beat(self) -> dict[str, Any]:
        status, metrics = self.status, self.metrics
        now = time.monotonic()
        interval = max(1e-3, now - self.last)
        received = status.turns_received
        load = (received - self.last_received) / interval
        self.last, self.last_received = now, received
        resident, resident_bytes, counts, cache = 0, 0, {}, {"hits": 0, "misses": 0, "evictions": 0}
        loads: list[float] = []
        for ref in status.workers():
            try:
                stats, turns, took = ref.proxy().take_heartbeat().get(timeout=2)
            except (pykka.ActorDeadError, pykka.Timeout):
                continue
            for bot, n in turns.items():
                counts[bot] = counts.get(bot, 0) + n
            loads += took
            resident += stats["resident_models"]
            resident_bytes += stats["resident_bytes"]
            for k in cache:
                cache[k] += stats[f"cache_{k}" if k != "evictions" else k]
        floor = self.hot_rate / 2  # reported from half the threshold: copies add up over nodes
        hot = sorted(((b, n / interval) for b, n in counts.items() if n / interval >= floor), key=lambda x: -x[1])
        beat = {
            "node": status.node_id, "capacity": status.capacity, "load": round(load, 1), "resident": resident,
            "resident_bytes": resident_bytes, "hot": {b: round(r, 1) for b, r in hot[:HOT_REPORTED]},
            "in_flight": status.in_flight, "started_at": status.started_at,
            "at": time.time(), "draining": False, "cache": cache, "rss_bytes": rss_bytes(),
            "load_ms": [round(x * 1e3, 3) for x in loads[-LOADS_REPORTED:]],
            "restarts": status.restarts(), "http": status.http_url,
        }
        pauses = self.gc_pauses.take()
        beat["gc_ms"] = [[generation, round(seconds * 1e3, 3)] for generation, seconds in pauses]
        writes = self.write_times()
        beat["write_ms"] = [[round(waited * 1e3, 3), round(took * 1e3, 3)] for waited, took in writes[-LOADS_REPORTED:]]
        for waited, took in writes:
            metrics.slow_write_seconds.labels("total").observe(took)
            metrics.slow_write_seconds.labels("lock_wait").observe(waited)
        for seconds in loads:
            metrics.model_load_seconds.observe(seconds)
        for generation, seconds in pauses:
            metrics.gc_seconds.labels(str(generation)).observe(seconds)
        status.last_beat = beat
        self.publish(protocol.HEARTBEAT_SUBJECT, protocol.encode_body(beat, False))
        if self.heartbeat_file:
            write_atomic(Path(self.heartbeat_file), json.dumps({**beat, "nats": status.nats_url, "members": status.members}))
        return beat


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def rss_bytes() -> int:
    """This process's resident memory now (Linux), 0 where unknown."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
