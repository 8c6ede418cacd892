"""Two node processes committing turns to one SQLite file: the library's own SQLite
datastore against botyard's writer lock.

    python bench/sqlite_writers.py [--writers 2] [--seconds 5] [--rounds 3] [--rate 300]

Each writer process is a node's conversation actor reduced to its commit: open loop at
--rate turns/s (Poisson), every turn appended to one of 200 conversations, the turns that
arrived meanwhile group-committed in one transaction, as the actor does. A turn's latency
is from its arrival to the end of the commit that recorded it. Variants alternate in
rounds on fresh database files, so a busy host hits them alike:

- ``library``: ``eventsourcing.sqlite`` as it is: a writer that finds the lock taken
  sleeps in SQLite's busy handler (1, 2, 5, 10 ... 100 ms) and checkpoints in its commits;
- ``lock``: every write transaction takes the writer lock first (``flock``), as botyard's
  event store does;
- ``lock, synchronous=normal``: the same with ``sqlite:///...?synchronous=normal``: no
  fsync per commit (a power cut may lose the last commits; a killed process loses none).
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from eventsourcing.application import Application

from botyard.events import Conversation, EventStore
from botyard.events.store import store_env

VARIANTS = ("library", "lock", "lock, synchronous=normal")
CONVERSATIONS = 200


class LibraryStore(EventStore):
    """The same aggregates and codec over the library's own SQLite datastore."""

    def __init__(self, events_url: str, data_dir: str) -> None:
        self.events_url = events_url
        Application.__init__(self, env={**store_env(events_url, data_dir), "PERSISTENCE_MODULE": "eventsourcing.sqlite"})


def writer(variant: str, db: str, index: int, seconds: float, rate: float, start_at: float, out) -> None:
    url = f"sqlite:///{db}" + ("?synchronous=normal" if variant.endswith("normal") else "")
    store = LibraryStore(url, str(Path(db).parent)) if variant == "library" else EventStore(url, Path(db).parent)
    rng = random.Random(index)
    conversations = [Conversation(tenant="acme", bot="faq", conversation_id=f"w{index}-c{c}") for c in range(CONVERSATIONS)]
    store.save_all(conversations)
    latencies: list[float] = []
    while time.time() < start_at:
        time.sleep(0.001)
    started = time.perf_counter()
    next_at = started
    while next_at - started < seconds:
        now = time.perf_counter()
        if next_at > now:
            time.sleep(next_at - now)
        arrived = []
        while next_at <= time.perf_counter() and next_at - started < seconds:  # every turn due by now: one batch
            arrived.append(next_at)
            next_at += rng.expovariate(rate)
        touched = {}
        for _ in arrived:
            conv = conversations[rng.randrange(CONVERSATIONS)]
            n = conv.turns + 1
            conv.record_turn(
                turn=n, turn_id=f"t{n}", user_text="where is my order?", intent="order_status", confidence=0.93,
                reply="Let me check.", fallback=False, snapshot="s" * 64, node=f"n{index}", received_at=time.time(),
                entities=[],
            )
            touched[id(conv)] = conv
        store.save_all(touched.values())
        done = time.perf_counter()
        latencies += [done - a for a in arrived]
    store.close()
    out.put(latencies)


def run_variant(variant: str, args) -> tuple[list[float], float]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        db = str(Path(tmp) / "events.db")
        EventStore(f"sqlite:///{db}", tmp).close()
        start_at = time.time() + 2.0  # after every writer has started and saved its conversations
        procs = [
            ctx.Process(target=writer, args=(variant, db, i, args.seconds, args.rate, start_at, out))
            for i in range(args.writers)
        ]
        for p in procs:
            p.start()
        latencies = [x for _ in procs for x in out.get(timeout=args.seconds + 120)]
        for p in procs:
            p.join(30)
    return latencies, args.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=300.0, help="turns/s per writer")
    parser.add_argument("--dir", default=None, help="where the database files go (default: the system temp dir)")
    args = parser.parse_args()
    results: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(1, args.rounds + 1):
        for variant in VARIANTS:
            latencies, _ = run_variant(variant, args)
            results[variant] += latencies
            ms = np.array(latencies) * 1e3
            print(f"[bench] round {r}/{args.rounds} {variant}: {len(ms):,} turns, p99 {np.percentile(ms, 99):.2f} ms", flush=True)
    print()
    print(f"{args.writers} writer processes, one SQLite file, {args.rate:g} turns/s each (Poisson), "
          f"{args.rounds} rounds of {args.seconds:g} s")
    print()
    print("| variant | turns | p50 ms | p99 ms | p99.9 ms | max ms | p99 / library p99 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = np.percentile(np.array(results["library"]) * 1e3, 99)
    for variant in VARIANTS:
        ms = np.array(results[variant]) * 1e3
        p99 = np.percentile(ms, 99)
        print(f"| {variant} | {len(ms):,} | {np.percentile(ms, 50):.2f} | {p99:.2f} | {np.percentile(ms, 99.9):.2f} | "
              f"{ms.max():.2f} | {p99 / base:.2f} |")


if __name__ == "__main__":
    main()
