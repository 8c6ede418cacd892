"""Tenants on one node: what authorization and quotas cost, and whether a noisy tenant hurts another.

    python bench/tenants.py [--seconds 5] [--rounds 2] [--clients 16]

Trains the example bot twice into one data dir: as ``acme-shop/support`` and as
``noisy-shop/support``. Then, each in its own processes (nats-server, node):

1. Overhead: the node on its embedded nats-server with authorization on (nkey users with
   per-subject permissions; the client holds acme-shop's credential) and a turns/s quota
   high enough never to refuse (so every turn pays the check), against the node with
   authorization off and no quotas; alternating rounds of ``--clients`` closed-loop clients.
2. Noisy neighbour: with noisy-shop's quota at ``--quota`` turns/s, acme-shop's p99 at 4
   closed-loop clients alone, then while noisy-shop sends 10x its quota open-loop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgpack
import nats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from turns import closed_loop, pct, train_variant  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "shop-support.yml"
UTTERANCES = ["hello", "how much is shipping", "can I pay with paypal", "thanks!", "when are you open"]


def start_node(env: dict) -> subprocess.Popen:
    node = subprocess.Popen([sys.executable, "-m", "botyard", "node"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert b"ready" in node.stdout.readline()
    return node


def stop(node: subprocess.Popen) -> None:
    node.terminate()
    node.wait(30)


def url_of(data: Path) -> str:
    return (data / "nats.url").read_text().strip()


async def connect_options(creds: Path | None, tenant: str) -> dict:
    return {"nkeys_seed_str": creds.read_text().strip(), "inbox_prefix": f"_INBOX_{tenant}"} if creds else {}


def run_closed(url: str, options: dict, tenant: str, clients: int, seconds: float, tag: str):
    def req(i, k):
        return f"botyard.turn.{tenant}.support", msgpack.packb({"conversation_id": f"{tag}-c{i}-{k // 20}",
                                                                "text": UTTERANCES[k % len(UTTERANCES)]})

    return asyncio.run(closed_loop(url, req, clients, seconds, options=options))


async def flood(url: str, options: dict, rate: float, seconds: float) -> dict:
    """Open loop: ``rate`` turns/s of noisy-shop for ``seconds``; counts of replies by code."""
    nc = await nats.connect(url, **options)
    counts: dict[str, int] = {}
    pending = []

    async def one(k: int) -> None:
        try:
            msg = await nc.request("botyard.turn.noisy-shop.support",
                                   msgpack.packb({"conversation_id": f"noisy-{k % 50}", "text": "hello"}), timeout=10)
            body = msgpack.unpackb(msg.data)
            code = body["error"]["code"] if "error" in body else "ok"
        except Exception as exc:
            code = type(exc).__name__
        counts[code] = counts.get(code, 0) + 1

    start = time.perf_counter()
    k = 0
    while time.perf_counter() - start < seconds:
        due = start + k / rate
        if due > time.perf_counter():
            await asyncio.sleep(due - time.perf_counter())
        pending.append(asyncio.ensure_future(one(k)))
        k += 1
    await asyncio.gather(*pending)
    await nc.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--quota", type=float, default=50.0, help="noisy-shop's turns per second")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="botyard-bench-tenants-"))
    data = work / "data"
    base = {**os.environ, "BOTYARD_DATA_DIR": str(data), "BOTYARD_LOG_LEVEL": "WARNING", "BOTYARD_HTTP_PORT": "-1"}
    base.pop("BOTYARD_NATS_URL", None)
    train_variant(work, base, lambda d: d.update(tenant="noisy-shop"), "noisy")
    creds = {}
    for tenant in ("acme-shop", "noisy-shop"):
        creds[tenant] = data / "creds" / f"{tenant}-bench.nk"
        subprocess.run([sys.executable, "-m", "botyard", "tokens", "issue", tenant, "--name", "bench", "--out", str(creds[tenant])],
                       env=base, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    variants = {
        "auth + quotas": {**base, "BOTYARD_NATS_AUTH": "1", "BOTYARD_QUOTA_TURNS_PER_SECOND": "1000000"},
        "open, no quotas": {**base, "BOTYARD_NATS_AUTH": "0"},
    }
    rates: dict[str, list[int]] = {name: [] for name in variants}
    p99s: dict[str, list[float]] = {name: [] for name in variants}
    run_id = uuid.uuid4().hex[:6]
    for r in range(args.rounds):
        for name in (list(variants) if r % 2 == 0 else list(reversed(variants))):
            node = start_node(variants[name])
            try:
                options = asyncio.run(connect_options(creds["acme-shop"] if "auth" in name else None, "acme-shop"))
                print(f"[bench] round {r + 1}/{args.rounds}: {name}, {args.clients} clients ...", flush=True)
                rate, lat, errors = run_closed(url_of(data), options, "acme-shop", args.clients, args.seconds, f"{run_id}-{r}-{name[:4]}")
                assert errors == 0, f"{errors} errors"
                rates[name].append(rate)
                p99s[name].append(pct(lat, 0.99))
            finally:
                stop(node)

    print("[bench] noisy neighbour ...", flush=True)
    env = {**base, "BOTYARD_NATS_AUTH": "1", "BOTYARD_TENANT_QUOTAS": f'{{"noisy-shop": {{"turns_per_second": {args.quota}}}}}'}
    node = start_node(env)
    try:
        url = url_of(data)
        quiet = asyncio.run(connect_options(creds["acme-shop"], "acme-shop"))
        loud = asyncio.run(connect_options(creds["noisy-shop"], "noisy-shop"))
        _, alone, _ = run_closed(url, quiet, "acme-shop", 4, args.seconds, f"{run_id}-alone")

        async def both():
            flooding = asyncio.ensure_future(flood(url, loud, 10 * args.quota, args.seconds + 1))
            await asyncio.sleep(0.5)
            quiet_run = await asyncio.get_running_loop().run_in_executor(
                None, lambda: run_closed(url, quiet, "acme-shop", 4, args.seconds, f"{run_id}-loud"))
            return quiet_run, await flooding

        (_, loaded, _), counts = asyncio.run(both())
    finally:
        stop(node)

    print()
    print(f"authorization and quotas on vs off, {args.clients} clients, {args.rounds} alternating rounds of {args.seconds:g} s:")
    print("| | turns/s per round | mean | p99 ms (mean) | on / off |")
    print("|---|---|---:|---:|---:|")
    on, off = statistics.mean(rates["auth + quotas"]), statistics.mean(rates["open, no quotas"])
    for name in variants:
        mean = statistics.mean(rates[name])
        print(f"| {name} | {', '.join(f'{x:,}' for x in rates[name])} | {mean:,.0f} | {statistics.mean(p99s[name]):.2f} "
              f"| {'%.3f' % (on / off) if name == 'auth + quotas' else ''} |")
    print()
    print(f"noisy neighbour: noisy-shop at {10 * args.quota:g} turns/s open loop (10x its quota of {args.quota:g}); "
          "acme-shop at 4 closed-loop clients:")
    print("| acme-shop | p50 ms | p99 ms | p99 / alone |")
    print("|---|---:|---:|---:|")
    print(f"| alone | {pct(alone, .5):.2f} | {pct(alone, .99):.2f} | |")
    print(f"| beside the flood | {pct(loaded, .5):.2f} | {pct(loaded, .99):.2f} | {pct(loaded, .99) / pct(alone, .99):.2f} |")
    print(f"noisy-shop's replies: {', '.join(f'{k} {v:,}' for k, v in sorted(counts.items()))}")


if __name__ == "__main__":
    main()
