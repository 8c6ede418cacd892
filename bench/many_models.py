"""10,000 bots on two nodes: Zipf traffic, a byte-bounded model cache, cold loads, memory.

    python bench/many_models.py [--bots 10000] [--seconds 20] [--concurrency 16] [--cache-mb 1200]

How the bots are made (once; cached under --work): BASE small bots are really trained,
each a random subset of 10-30 HWU64 or BANKING77 intents with 12 training examples
each (train splits only). Each of the 10,000 bots is one of those models saved as its
own snapshot under its own tenant and name: its own file, its own id, loaded on its own,
so sizes and load costs are real, but bots with the same base answer alike. Every bot's
`production` alias is recorded as an event, as `botyard snapshots promote` would.

Then: an embedded nats-server, two `botyard node` processes (shared SQLite, a new file
each run unless --keep-events, its 10,000 aliases recorded first; local snapshot
directory; a model cache of --cache-mb each), and from this process:
  1. a sweep: one turn to every bot (every bot must answer; most are cold loads),
  2. Zipf traffic (s = 1.1) over all bots, closed loop, --seconds,
  3. Zipf traffic open loop (Poisson arrivals) at --rate turns/s (default: half the
     closed-loop rate): latency at a set load rather than at saturation,
  4. the baseline: the same clients, all turns to one bot (always in memory).
Node-side figures (cold-load times, cache hits, resident bytes, RSS) come from the
nodes' heartbeats.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import nats
import numpy as np

from botyard import protocol  # noqa: E402
from botyard.ops.nats_server import EmbeddedNats

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "intents"
PER_TENANT = 10
SLOW_TURN = 0.1
"""Turns slower than this (seconds) are listed by when they were sent: a stall shows as one cluster."""
CLIENT_GC: list[float] = []
"""This process's own collector pauses (ms) of 1 ms or more: the clients' latencies include them."""


_GC_STARTED = [0.0]
"""When the bench client's running collection began (gc callbacks keep no state of their own)."""


def _time_client_gc(phase: str, info: dict, started: list[float] = _GC_STARTED) -> None:
    if phase == "start":
        started[0] = time.perf_counter()
    elif (took := (time.perf_counter() - started[0]) * 1e3) >= 1.0:
        CLIENT_GC.append(took)


def bot_name(i: int) -> tuple[str, str]:
    return f"t{i // PER_TENANT:05d}", f"b{i % PER_TENANT}"


def intents_of(source: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if source == "banking77":
        with (DATA / "banking77" / "train.csv").open(encoding="utf-8", newline="") as fh:
            for r in csv.DictReader(fh):
                out.setdefault(r["category"], []).append(r["text"])
    else:
        folder = DATA / source / "train"
        texts = (folder / "seq.in").read_text(encoding="utf-8").splitlines()
        labels = (folder / "label").read_text(encoding="utf-8").splitlines()
        for text, label in zip(texts, labels):
            out.setdefault(label.strip(), []).append(text)
    return out


def make_bots(work: Path, bots: int, base: int, events_url: str = "") -> list[tuple[str, list[str]]]:
    """Train ``base`` models, save ``bots`` snapshots, promote each; return (id, probe texts) per bot."""
    from botyard.models.definition import parse_bot
    from botyard.snapshots.store import LocalSnapshotStore
    from botyard.training.config import TrainConfig
    from botyard.training.pipeline import train

    manifest_file = work / "bots.json"
    if manifest_file.exists():
        made = json.loads(manifest_file.read_text())
        if len(made) == bots:
            promote_all(work, events_url, [m[0] for m in made])
            return [tuple(x) for x in made]
    rng = random.Random(7)
    pools = {s: intents_of(s) for s in ("hwu64", "banking77")}
    bases = []
    for b in range(base):
        source = ("hwu64", "banking77")[b % 2]
        names = rng.sample(sorted(pools[source]), rng.randint(10, 30))
        intents = {re.sub(r"\W", "_", n): {"examples": rng.sample(pools[source][n], min(12, len(pools[source][n]))),
                                         "responses": [f"({n})"]} for n in names}
        definition = parse_bot({"tenant": "base", "bot": f"b{b}", "intents": intents}, source=f"base-{b}")
        started = time.perf_counter()
        result = train(definition, TrainConfig(epochs=10, seed=b))
        probes = [ex for i in list(intents.values())[:3] for ex in i["examples"][:1]]
        bases.append((result, probes))
        print(f"[bench] base bot {b + 1}/{base}: {len(names)} {source} intents, trained in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
    store = LocalSnapshotStore(work / "data" / "snapshots")
    made = []
    started = time.perf_counter()
    for i in range(bots):
        tenant, bot = bot_name(i)
        result, probes = bases[i % base]
        manifest = {**result.manifest, "tenant": tenant, "bot": bot, "created_at": time.time(), "parent": None,
                    "definition": {**result.manifest["definition"], "tenant": tenant, "bot": bot}}
        info = store.save(manifest, result.arrays)
        made.append((info.id, probes))
        if (i + 1) % 1000 == 0:
            print(f"[bench] {i + 1}/{bots} snapshots saved ({time.perf_counter() - started:.0f} s)", flush=True)
    promote_all(work, events_url, [m[0] for m in made])
    manifest_file.write_text(json.dumps(made))
    return made


def promote_all(work: Path, events_url: str, ids: list[str]) -> None:
    """Every bot's ``production`` alias, recorded as an event (skipped where it is already)."""
    from botyard.events.store import EventStore

    events = EventStore(events_url, work / "data")
    started = time.perf_counter()
    try:
        done = set(events.bot_refs())
        for i, sid in enumerate(ids):
            tenant, bot = bot_name(i)
            if (tenant, bot) not in done:
                events.change_bot(tenant, bot, lambda a, sid=sid: a.promote("production", sid, actor="bench"))
            if (i + 1) % 1000 == 0 and len(done) < len(ids):
                print(f"[bench] {i + 1}/{len(ids)} bots promoted ({time.perf_counter() - started:.0f} s)", flush=True)
    finally:
        events.close()


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database of ``url`` if it does not exist."""
    from urllib.parse import urlparse

    import psycopg

    parsed = urlparse(url)
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        name = parsed.path.lstrip("/")
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def pct(values, q):
    return float(np.percentile(values, q * 100)) if len(values) else float("nan")


class Heartbeats:
    def __init__(self):
        self.latest: dict[str, dict] = {}
        self.load_ms: list[float] = []
        self.gc_ms: list[tuple[int, float]] = []
        self.write_ms: list[tuple[float, float]] = []

    async def listen(self, nc):
        async def take(msg):
            beat = msgpack.unpackb(msg.data)
            self.latest[beat["node"]] = beat
            self.load_ms += beat.get("load_ms", [])
            self.gc_ms += [tuple(p) for p in beat.get("gc_ms", [])]
            self.write_ms += [tuple(w) for w in beat.get("write_ms", [])]

        await nc.subscribe(protocol.HEARTBEAT_SUBJECT, cb=take)


async def timed_turn(nc, subject, body) -> tuple[float, bool, float]:
    """One turn's round trip: (seconds, answered without an error, when it was sent)."""
    t0 = time.perf_counter()
    try:
        msg = await nc.request(subject, body, timeout=10)
        ok = b"error" not in msg.data[:16]
    except Exception:
        ok = False
    return time.perf_counter() - t0, ok, t0


async def drive(nc, requests, concurrency, seconds=None):
    """Closed-loop turns; ``requests`` is an iterator of (subject, body, tag). Returns [(tag, seconds, ok, sent)]."""
    out = []
    stop_at = time.perf_counter() + seconds if seconds else float("inf")
    it = iter(requests)

    async def client():
        while time.perf_counter() < stop_at:
            try:
                subject, body, tag = next(it)
            except StopIteration:
                return
            out.append((tag, *await timed_turn(nc, subject, body)))

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return out, time.perf_counter() - started


async def open_loop(nc, requests, rate, seconds):
    """Open-loop turns: Poisson arrivals at ``rate`` per second for ``seconds``, each sent
    without waiting for the others, so latency is measured at a set load, not at saturation."""
    out = []
    pending = set()
    it = iter(requests)
    rng = random.Random(3)

    async def one(subject, body, tag):
        out.append((tag, *await timed_turn(nc, subject, body)))

    started = next_at = time.perf_counter()
    while next_at - started < seconds:
        delay = next_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(*next(it)))
        pending.add(task)
        task.add_done_callback(pending.discard)
        next_at += rng.expovariate(rate)
    await asyncio.gather(*pending)
    return out, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bots", type=int, default=10_000)
    parser.add_argument("--base", type=int, default=16, help="really trained models the bots are made from")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--rate", type=float, default=0.0,
        help="then: Zipf traffic open loop at this many turns/s (default: half the closed-loop Zipf rate)",
    )
    parser.add_argument("--cache-mb", type=int, default=1200, help="model cache per node")
    parser.add_argument("--work", default=".botyard-bench/many-models")
    parser.add_argument(
        "--events-url", default="",
        help="the nodes' shared event store (default: SQLite in --work; e.g. postgresql://postgres@127.0.0.1:5432/botyard_bench)",
    )
    parser.add_argument(
        "--keep-events", action="store_true",
        help="keep the SQLite event log of earlier runs (default: start each run on a new one, the bots' aliases re-recorded)",
    )
    args = parser.parse_args()

    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not args.events_url and not args.keep_events:  # every run on a new event log: runs stay comparable
        for old in (work / "data").glob("events.db*"):
            old.unlink()
    if args.events_url.startswith("postgres"):
        ensure_database(args.events_url)
    bots = make_bots(work, args.bots, args.base, args.events_url)
    server = EmbeddedNats(work / "nats")
    url = server.start()
    env = {**os.environ, "BOTYARD_DATA_DIR": str(work / "data"), "BOTYARD_NATS_URL": url, "BOTYARD_LOG_LEVEL": "WARNING",
           "BOTYARD_EVENTS_URL": args.events_url,
           "BOTYARD_MODEL_CACHE_BYTES": str(args.cache_mb << 20)}
    nodes = []
    try:
        for n in ("n1", "n2"):
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "botyard", "node"], env={**env, "BOTYARD_NODE_ID": n},
                                    stdout=subprocess.PIPE)
            assert b"ready" in proc.stdout.readline()
            print(f"[bench] node {n} ready in {time.perf_counter() - t0:.1f} s", flush=True)
            nodes.append(proc)
        time.sleep(2.0)  # heartbeats: both nodes see both
        results = asyncio.run(run(url, bots, args))
    finally:
        for proc in nodes:
            proc.terminate()
            proc.wait(30)
        server.stop()
    report(results, args)


async def run(url, bots, args):
    nc = await nats.connect(url, pending_size=64 * 1024 * 1024)
    beats = Heartbeats()
    await beats.listen(nc)
    run_id = f"{time.time():.0f}"
    gc.callbacks.append(_time_client_gc)
    gc.freeze()  # the bots' probe texts and the clients' setup: long-lived, never garbage

    def turn(i, k, tag):
        tenant, bot = bot_name(i)
        probes = bots[i][1]
        body = msgpack.packb({"conversation_id": f"{run_id}-{tag}-{k % 50}", "text": probes[k % len(probes)]})
        return f"botyard.turn.{tenant}.{bot}", body, (tag, i)

    n = len(bots)
    print(f"[bench] sweep: one turn to each of {n:,} bots ...", flush=True)
    sweep_order = list(range(n))
    random.Random(1).shuffle(sweep_order)
    sweep, sweep_s = await drive(nc, (turn(i, k, "sweep") for k, i in enumerate(sweep_order)), args.concurrency)
    answered = {tag[1] for tag, _, ok, _ in sweep if ok}
    print(f"[bench] sweep: {len(answered):,}/{n:,} bots answered in {sweep_s:.1f} s", flush=True)
    await asyncio.sleep(1.2)  # the heartbeats carrying the sweep's last loads
    cold_loads = list(beats.load_ms)

    ranks = np.arange(1, n + 1)
    weights = 1.0 / ranks**1.1
    weights /= weights.sum()
    rng = np.random.default_rng(2)
    order = rng.permutation(n)  # which bot has which popularity rank
    picks = order[rng.choice(n, size=2_000_000, p=weights)]
    hot_set = set(order[:100].tolist())

    def zipf_requests():
        for k, i in enumerate(picks):
            yield turn(int(i), k, "zipf")

    before = {node: dict(b.get("cache", {})) for node, b in beats.latest.items()}
    loads_before = len(beats.load_ms)
    print(f"[bench] Zipf traffic over {n:,} bots for {args.seconds:g} s ...", flush=True)
    zipf, zipf_s = await drive(nc, zipf_requests(), args.concurrency, args.seconds)
    await asyncio.sleep(1.2)
    after = {node: dict(b.get("cache", {})) for node, b in beats.latest.items()}
    zipf_loads = beats.load_ms[loads_before:]
    rate = args.rate or round(len(zipf) / zipf_s / 2)
    cache_before = {node: dict(b.get("cache", {})) for node, b in beats.latest.items()}
    loads_before, gc_before, writes_before = len(beats.load_ms), len(beats.gc_ms), len(beats.write_ms)
    client_gc_before = len(CLIENT_GC)
    print(f"[bench] Zipf open loop at {rate:g} turns/s for {args.seconds:g} s ...", flush=True)
    steady, steady_s = await open_loop(nc, zipf_requests(), rate, args.seconds)
    await asyncio.sleep(1.2)
    cache_after = {node: dict(b.get("cache", {})) for node, b in beats.latest.items()}
    steady_loads = beats.load_ms[loads_before:]
    steady_gc = beats.gc_ms[gc_before:]
    steady_writes = beats.write_ms[writes_before:]
    steady_client_gc = CLIENT_GC[client_gc_before:]
    steady_hits = sum(cache_after[x]["hits"] - cache_before.get(x, {}).get("hits", 0) for x in cache_after)
    steady_misses = sum(cache_after[x]["misses"] - cache_before.get(x, {}).get("misses", 0) for x in cache_after)
    print(f"[bench] baseline: the same clients, one bot, {args.seconds / 2:g} s ...", flush=True)
    hottest = int(order[0])
    one, one_s = await drive(nc, (turn(hottest, k, "one") for k in range(10**9)), args.concurrency, args.seconds / 2)
    await asyncio.sleep(1.2)
    nodes = {node: dict(b) for node, b in beats.latest.items()}
    await nc.close()

    def lat(rows, pred=lambda tag: True):
        return [s * 1e3 for tag, s, ok, _ in rows if ok and pred(tag)]

    hits = sum(after[x]["hits"] - before.get(x, {}).get("hits", 0) for x in after)
    misses = sum(after[x]["misses"] - before.get(x, {}).get("misses", 0) for x in after)
    return {
        "bots": n, "answered": len(answered), "sweep_s": sweep_s, "sweep_lat": lat(sweep),
        "sweep_errors": sum(not ok for _, _, ok, _ in sweep),
        "zipf_rate": len(zipf) / zipf_s, "zipf_errors": sum(not ok for _, _, ok, _ in zipf),
        "hot_lat": lat(zipf, lambda tag: tag[1] in hot_set), "all_lat": lat(zipf),
        "zipf_bots": len({tag[1] for tag, _, _, _ in zipf}),
        "hit_rate": hits / max(1, hits + misses), "cold_loads": cold_loads, "zipf_loads": zipf_loads,
        "one_rate": len(one) / one_s, "one_lat": lat(one), "nodes": nodes,
        "steady_rate": rate, "steady_done": len(steady) / steady_s, "steady_hot": lat(steady, lambda tag: tag[1] in hot_set),
        "steady_all": lat(steady), "steady_cold": lat(steady, lambda tag: tag[1] not in hot_set),
        "steady_loads": steady_loads, "steady_errors": sum(not ok for _, _, ok, _ in steady),
        "steady_hit_rate": steady_hits / max(1, steady_hits + steady_misses), "steady_gc": steady_gc,
        "steady_writes": steady_writes, "steady_client_gc": steady_client_gc,
        "steady_slow": sorted((sent, s) for _, s, ok, sent in steady if s > SLOW_TURN),
    }


def report(r, args):
    print()
    store = "PostgreSQL" if args.events_url.startswith("postgres") else "SQLite (one file, both nodes)"
    print(f"{r['bots']:,} bots made from {args.base} trained models (see the docstring); two node processes, "
          f"{args.concurrency} closed-loop clients, model cache {args.cache_mb} MB per node, events in {store}")
    print()
    print("| figure | value | target |")
    print("|---|---:|---|")
    print(f"| bots that answered (sweep: one turn each) | {r['answered']:,} / {r['bots']:,} | all |")
    print(f"| sweep: turns/s, p50 / p99 ms (mostly cold bots) | {r['bots'] / r['sweep_s']:,.0f}, "
          f"{pct(r['sweep_lat'], .5):.1f} / {pct(r['sweep_lat'], .99):.1f} | |")
    print(f"| cold load (node side: read, verify, decode) p50 / p99 ms, sweep | {pct(r['cold_loads'], .5):.2f} / "
          f"{pct(r['cold_loads'], .99):.2f} ({len(r['cold_loads']):,} loads) | p99 ≤ 15 ms |")
    print(f"| Zipf: turns/s over {r['zipf_bots']:,} distinct bots | {r['zipf_rate']:,.0f} | |")
    print(f"| Zipf: hot bots (top 100) p50 / p99 ms | {pct(r['hot_lat'], .5):.1f} / {pct(r['hot_lat'], .99):.1f} | p99 ≤ 25 ms |")
    print(f"| Zipf: all turns p50 / p99 ms | {pct(r['all_lat'], .5):.1f} / {pct(r['all_lat'], .99):.1f} | |")
    print(f"| Zipf: cold loads p50 / p99 ms | {pct(r['zipf_loads'], .5):.2f} / {pct(r['zipf_loads'], .99):.2f} "
          f"({len(r['zipf_loads']):,} loads) | |")
    print(f"| Zipf: model cache hit rate | {r['hit_rate'] * 100:.1f} % | |")
    print(f"| open loop: Zipf at {r['steady_rate']:,.0f} turns/s offered (Poisson) | {r['steady_done']:,.0f} turns/s done | |")
    print(f"| open loop: hot bots (top 100) p50 / p99 ms | {pct(r['steady_hot'], .5):.1f} / {pct(r['steady_hot'], .99):.1f} "
          f"| p99 ≤ 25 ms |")
    print(f"| open loop: other bots p50 / p99 ms | {pct(r['steady_cold'], .5):.1f} / {pct(r['steady_cold'], .99):.1f} | |")
    print(f"| open loop: cold loads p50 / p99 ms | {pct(r['steady_loads'], .5):.2f} / {pct(r['steady_loads'], .99):.2f} "
          f"({len(r['steady_loads']):,} loads) | p99 ≤ 15 ms |")
    print(f"| open loop: model cache hit rate | {r['steady_hit_rate'] * 100:.1f} % | |")
    full = [ms for generation, ms in r["steady_gc"] if generation == 2]
    print(f"| open loop: collector pauses ≥ 1 ms, both nodes (full ones, longest) | {len(r['steady_gc'])} "
          f"({len(full)}, {max(full, default=0):.1f} ms) | |")
    writes = r["steady_writes"]
    print(f"| open loop: SQLite write transactions ≥ 5 ms, both nodes (longest; longest writer-lock wait) | {len(writes)} "
          f"({max((w[1] for w in writes), default=0):.1f} ms; {max((w[0] for w in writes), default=0):.1f} ms) | |")
    slow = r["steady_slow"]
    started = slow[0][0] if slow else 0.0
    spans = sorted({round(sent - started, 1) for sent, _ in slow})
    print(f"| open loop: turns over {SLOW_TURN * 1e3:.0f} ms (sent within s of the first: {spans[:8]}) | {len(slow)} | |")
    print(f"| open loop: the bench client's own collector pauses ≥ 1 ms (longest) | {len(r['steady_client_gc'])} "
          f"({max(r['steady_client_gc'], default=0):.1f} ms) | |")
    print(f"| baseline, one bot: turns/s, p50 / p99 ms | {r['one_rate']:,.0f}, {pct(r['one_lat'], .5):.1f} / "
          f"{pct(r['one_lat'], .99):.1f} | |")
    print(f"| Zipf turns/s / one-bot turns/s | {r['zipf_rate'] / r['one_rate']:.2f} | |")
    print(f"| errors (sweep, Zipf, open loop) | {r['sweep_errors']}, {r['zipf_errors']}, {r['steady_errors']} | 0 |")
    total_rss = 0
    for node, b in sorted(r["nodes"].items()):
        total_rss += b.get("rss_bytes", 0)
        per = b["resident_bytes"] / max(1, b["resident"])
        print(f"| node {node}: RSS, resident models, bytes per resident model | {b.get('rss_bytes', 0) / 2**20:,.0f} MiB, "
              f"{b['resident']:,}, {per / 1e6:.2f} MB | |")
    print(f"| RSS of the nodes together | {total_rss / 2**30:.2f} GiB | ≤ 4 GiB |")


if __name__ == "__main__":
    main()
