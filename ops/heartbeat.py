"""A node's heartbeat: published for the other nodes' membership views, and written to a
file (``BOTYARD_HEARTBEAT_FILE``) for liveness probes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pykka

from botyard import protocol
from botyard.events.sqlite import take_write_times

if TYPE_CHECKING:
    from botyard.ops.node import Node

LOADS_REPORTED = 500
"""Cold-load times (ms) since the last heartbeat, at most this many."""
HOT_REPORTED = 20
"""At most this many hot bots in one heartbeat (the list stays small however many bots)."""


class Heartbeats:
    def __init__(self, node: "Node") -> None:
        self.node = node
        self.last = time.monotonic()
        self.last_received = node.turns_received

    def beat(self) -> dict[str, Any]:
        node, cfg = self.node, self.node.config
        now = time.monotonic()
        interval = max(1e-3, now - self.last)
        received = node.turns_received
        load = (received - self.last_received) / interval
        self.last, self.last_received = now, received
        resident, resident_bytes, counts, cache = 0, 0, {}, {"hits": 0, "misses": 0, "evictions": 0}
        loads: list[float] = []
        for ref in list(node.routing.workers) if node.routing else []:
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
        floor = cfg.hot_rate / 2  # reported from half the threshold: copies add up over nodes
        hot = sorted(((b, n / interval) for b, n in counts.items() if n / interval >= floor), key=lambda x: -x[1])
        beat = {
            "node": cfg.node_id, "capacity": cfg.capacity, "load": round(load, 1), "resident": resident,
            "resident_bytes": resident_bytes, "hot": {b: round(r, 1) for b, r in hot[:HOT_REPORTED]},
            "in_flight": node.bridge.in_flight if node.bridge else 0, "started_at": node.started_at,
            "at": time.time(), "draining": False, "cache": cache, "rss_bytes": rss_bytes(),
            "load_ms": [round(x * 1e3, 3) for x in loads[-LOADS_REPORTED:]],
            "restarts": _restarts(node), "http": node.http.url if node.http else None,
        }
        pauses = node.gc_pauses.take()
        beat["gc_ms"] = [[generation, round(seconds * 1e3, 3)] for generation, seconds in pauses]
        writes = take_write_times()
        beat["write_ms"] = [[round(waited * 1e3, 3), round(took * 1e3, 3)] for waited, took in writes[-LOADS_REPORTED:]]
        for waited, took in writes:
            node.metrics.slow_write_seconds.labels("total").observe(took)
            node.metrics.slow_write_seconds.labels("lock_wait").observe(waited)
        for seconds in loads:
            node.metrics.model_load_seconds.observe(seconds)
        for generation, seconds in pauses:
            node.metrics.gc_seconds.labels(str(generation)).observe(seconds)
        node.last_beat = beat
        node.bridge.publish("botyard.cluster.heartbeat", protocol.encode_body(beat, False))
        if cfg.heartbeat_file:
            members = sorted(node.membership.members)  # read across threads: a copy of the keys is enough
            write_atomic(Path(cfg.heartbeat_file), json.dumps({**beat, "nats": node.nats_url, "members": members}))
        return beat


def _restarts(node: "Node") -> int:
    sup = node.supervisor
    try:
        return sup.proxy().stats().get(timeout=2)["restarts"] if sup is not None and sup.is_alive() else 0
    except (pykka.ActorDeadError, pykka.Timeout):
        return 0


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
