"""Live model swaps under load: how fast every node switches, and what swapping costs.

    python bench/swap.py [--seconds 5] [--concurrency 16] [--swaps-per-second 10] [--rounds 2]

Trains the example bot twice (seeds 0 and 1) into a temporary data dir, starts an
embedded nats-server and two `botyard node` processes sharing SQLite and the snapshot
directory, and drives turns from this process with N closed-loop clients. Each round runs
the same load twice (each turn a new conversation: until placement gives a conversation
one owner node, two nodes answering turns of one conversation conflict and retry): once
with no swaps, once while an operator client promotes the two
snapshots in turn over `botyard.admin.promote`, SWAPS times a second.

Switch time of one swap = from the alias event (its timestamp, taken before commit) to
the first reply naming the new snapshot from the *last* of the two nodes to answer with
it. A swap for which a node sent no such reply before the next swap is counted as
unmeasured (it cannot be told from a slow switch, so the table reports how many).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgpack
import nats

from botyard.ops.nats_server import EmbeddedNats

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "shop-support.yml"
TENANT, BOT = "acme-shop", "support"
UTTERANCES = ["where is my order", "how much is shipping", "hello", "can I pay with paypal", "thanks!"]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def run_load(url: str, concurrency: int, seconds: float, swaps: tuple[str, str] | None, rate: float, tag: str):
    """Closed-loop turns; with ``swaps``, promote the two snapshots in turn ``rate`` times a second."""
    nc = await nats.connect(url, pending_size=64 * 1024 * 1024)
    replies: list[tuple[float, str, str]] = []  # (received, node, snapshot)
    latencies: list[float] = []
    moves: list[tuple[float, str]] = []  # (event time, target)
    admin_lat: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client(i: int) -> None:
        nonlocal errors
        k = 0
        while time.perf_counter() < stop_at:
            # One turn per conversation: either node may take any turn, and until placement gives
            # each conversation one owner, two nodes writing one conversation retry on conflicts.
            body = msgpack.packb({"conversation_id": f"{tag}-c{i}-{k}", "text": UTTERANCES[k % len(UTTERANCES)]})
            t0 = time.perf_counter()
            try:
                msg = await nc.request(f"botyard.turn.{TENANT}.{BOT}", body, timeout=10)
                reply = msgpack.unpackb(msg.data)
            except Exception as exc:
                errors += 1
                print(f"[bench] turn failed: {exc!r}", file=sys.stderr)
                continue
            latencies.append(time.perf_counter() - t0)
            if "error" in reply:
                errors += 1
                print(f"[bench] turn refused: {reply['error']}", file=sys.stderr)
                continue
            replies.append((time.time(), reply["node"], reply["snapshot"]))
            k += 1

    async def swapper() -> None:
        nonlocal errors
        listed = await nc.request("botyard.admin.list", msgpack.packb({"tenant": TENANT, "bot": BOT}), timeout=10)
        k = 1 if msgpack.unpackb(listed.data)["result"]["aliases"]["production"] == swaps[0] else 0
        await asyncio.sleep(0.2)
        start = time.perf_counter()
        while time.perf_counter() < stop_at - 0.2:
            target = swaps[k % 2]
            body = msgpack.packb({"tenant": TENANT, "bot": BOT, "snapshot": target, "actor": "bench/swap.py"})
            msg = await nc.request("botyard.admin.promote", body, timeout=10)
            result = msgpack.unpackb(msg.data)
            if "error" in result:
                errors += 1
                print(f"[bench] promote refused: {result['error']}", file=sys.stderr)
            else:
                moves.append((result["result"]["at"], target))
                admin_lat.append(time.time() - result["result"]["at"])
            k += 1
            await asyncio.sleep(max(0.0, start + k / rate - time.perf_counter()))  # on a fixed schedule

    started = time.perf_counter()
    tasks = [client(i) for i in range(concurrency)] + ([swapper()] if swaps else [])
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    await nc.close()
    if admin_lat:
        print(f"[bench] event -> promote reply: p50 {pct(admin_lat, .5) * 1e3:.1f} ms, p99 {pct(admin_lat, .99) * 1e3:.1f} ms", flush=True)
    return len(latencies) / elapsed, latencies, errors, replies, moves


def switch_times(replies, moves, nodes=("n0", "n1")) -> tuple[list[float], int]:
    """Per swap: event -> first reply with the new snapshot from the slowest node (s)."""
    measured, unmeasured = [], 0
    for k, (t0, target) in enumerate(moves):
        t1 = moves[k + 1][0] if k + 1 < len(moves) else float("inf")
        firsts = []
        for node in nodes:
            first = next((t for t, n, s in replies if n == node and s == target and t0 <= t < t1), None)
            firsts.append(first)
        if None in firsts:
            unmeasured += 1
        else:
            measured.append(max(firsts) - t0)
    return measured, unmeasured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--swaps-per-second", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="botyard-swap-"))
    env = {**os.environ, "BOTYARD_DATA_DIR": str(work / "data"), "BOTYARD_LOG_LEVEL": "WARNING"}
    env.pop("BOTYARD_NATS_URL", None)
    ids = []
    for seed, extra in ((0, []), (1, ["--promote", "staging"])):
        print(f"[bench] training the example bot, seed {seed} ...", flush=True)
        out = subprocess.run([sys.executable, "-m", "botyard", "train", str(EXAMPLE), "--seed", str(seed), *extra],
                             env=env, check=True, capture_output=True, text=True)
        ids.append(json.loads(out.stdout.strip().splitlines()[-1])["snapshot"])
    server = EmbeddedNats(work / "nats")
    url = server.start()
    env["BOTYARD_NATS_URL"] = url
    nodes = []
    try:
        for i in range(2):
            proc = subprocess.Popen([sys.executable, "-m", "botyard", "node"], env={**env, "BOTYARD_NODE_ID": f"n{i}"},
                                    stdout=subprocess.PIPE)
            assert b"ready" in proc.stdout.readline()
            nodes.append(proc)
        asyncio.run(run_load(url, args.concurrency, 1.0, None, 0, "warmup"))
        rows, all_switch, unmeasured, swaps_done = [], [], 0, 0
        for r in range(args.rounds):
            for swapping in (False, True):
                label = f"swaps {args.swaps_per_second:g}/s" if swapping else "no swaps"
                print(f"[bench] round {r + 1}/{args.rounds}: {label} for {args.seconds:g} s ...", flush=True)
                rate, lat, errors, replies, moves = asyncio.run(run_load(
                    url, args.concurrency, args.seconds, tuple(ids) if swapping else None,
                    args.swaps_per_second, f"r{r}-{int(swapping)}",
                ))
                rows.append((r + 1, label, rate, pct(lat, .5) * 1e3, pct(lat, .99) * 1e3, errors, len(moves)))
                if swapping:
                    measured, missing = switch_times(replies, moves)
                    all_switch += measured
                    unmeasured += missing
                    swaps_done += len(moves)
    finally:
        for proc in nodes:
            proc.terminate()
            proc.wait(20)
        server.stop()

    print()
    print(f"two node processes, {args.concurrency} closed-loop clients, {args.seconds:g} s per run")
    print("| round | run | turns/s | p50 ms | p99 ms | failed turns | swaps |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]:,.0f} | {row[3]:.2f} | {row[4]:.2f} | {row[5]} | {row[6]} |")
    base = [r[2] for r in rows if r[1] == "no swaps"]
    swapped = [r[2] for r in rows if r[1] != "no swaps"]
    ratio = (sum(swapped) / len(swapped)) / (sum(base) / len(base))
    print()
    print("| swaps | measured | unmeasured | switch p50 ms | switch p99 ms | switch max ms | turns/s swapping / not |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {swaps_done} | {len(all_switch)} | {unmeasured} | {pct(all_switch, .5) * 1e3:.1f} | "
          f"{pct(all_switch, .99) * 1e3:.1f} | {max(all_switch, default=float('nan')) * 1e3:.1f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
