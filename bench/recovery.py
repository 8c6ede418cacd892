"""What a node killed under load costs its conversations.

    python bench/recovery.py [--conversations 8] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Three scenarios, each with an embedded nats-server and `botyard node` processes, and
closed-loop clients (one per conversation, each turn with a ``turn_id``, a 1 s request
timeout, retried with the same ``turn_id``) in this process:

  1. one node on SQLite, SIGKILLed under load and restarted at once;
  2. two nodes on one SQLite file, one SIGKILLed (not restarted): the other takes over;
  3. the same with two nodes on PostgreSQL (skipped without --postgres).

For each: the restarted node's start to ready, and per conversation the longest gap
between two answered turns around the kill (the time the conversation could not talk),
and whether any acknowledged turn was lost or any ``turn_id`` recorded twice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgpack
import nats

from botyard.events.store import EventStore
from botyard.ops.nats_server import EmbeddedNats

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "shop-support.yml"
SUBJECT = "botyard.turn.acme-shop.support"
FAST = {"BOTYARD_HEARTBEAT_SECONDS": "0.25", "BOTYARD_NODE_TIMEOUT": "1.5"}


def start_node(env: dict, node_id: str, log: Path) -> tuple[subprocess.Popen, float]:
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "botyard", "node"], env={**env, "BOTYARD_NODE_ID": node_id},
                            stdout=subprocess.PIPE, stderr=open(log, "ab"))
    assert b"ready" in proc.stdout.readline(), f"node {node_id} did not start; see {log}"
    return proc, time.monotonic() - started


async def drive(url: str, conversations: int, scenario) -> dict:
    nc = await nats.connect(url)
    cids = [f"rec-{uuid.uuid4().hex[:8]}-{i}" for i in range(conversations)]
    acked: dict[str, list[tuple[str, float]]] = {c: [] for c in cids}
    stop = asyncio.Event()

    async def talk(cid: str) -> None:
        k = 0
        while not stop.is_set():
            body = msgpack.packb({"conversation_id": cid, "text": "where is my order", "turn_id": f"{cid}-{k}"})
            try:
                reply = msgpack.unpackb((await nc.request(SUBJECT, body, timeout=1.0)).data)
            except Exception:
                await asyncio.sleep(0.02)
                continue  # retried with the same turn_id
            if "error" in reply:
                await asyncio.sleep(0.02)
                continue
            acked[cid].append((f"{cid}-{k}", time.monotonic()))
            k += 1

    tasks = [asyncio.create_task(talk(c)) for c in cids]
    await asyncio.sleep(2.0)
    killed_at = time.monotonic()
    restarted = await asyncio.to_thread(scenario)
    await asyncio.sleep(5.0)
    stop.set()
    await asyncio.gather(*tasks)
    await nc.close()
    gaps = []
    for turns in acked.values():
        times = [t for _, t in turns]
        around = [b - a for a, b in zip(times, times[1:]) if b >= killed_at and a <= killed_at + 10]
        gaps.append(max(around) if around else float("nan"))
    return {"acked": acked, "gaps": gaps, "restart_s": restarted}


def check_store(events_url: str, data_dir: Path, acked: dict) -> tuple[int, int]:
    """(acknowledged turns missing from the store, turn_ids recorded more than once)."""
    store = EventStore(events_url, data_dir)
    try:
        missing = twice = 0
        for cid, turns in acked.items():
            ids = [e.turn_id for e in store.turns("acme-shop", "support", cid)]
            missing += len({t for t, _ in turns} - set(ids))
            twice += len(ids) - len(set(ids))
        return missing, twice
    finally:
        store.close()


def scenario(name: str, env: dict, nodes: int, restart: bool, conversations: int, work: Path) -> dict:
    procs = []
    try:
        for i in range(nodes):
            procs.append(start_node(env, f"n{i + 1}", work / f"{name}-n{i + 1}.log")[0])
        time.sleep(1.0)  # heartbeats: each node hears the others

        def kill() -> float | None:
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait(10)
            if not restart:
                return None
            procs[0], seconds = start_node(env, "n1", work / f"{name}-n1-again.log")
            return seconds

        result = asyncio.run(drive(env["BOTYARD_NATS_URL"], conversations, kill))
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(20)
    result["missing"], result["twice"] = check_store(env.get("BOTYARD_EVENTS_URL", ""), Path(env["BOTYARD_DATA_DIR"]),
                                                     result["acked"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--postgres", default="", help="an admin URL; a fresh database is made for the run")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="botyard-recovery-"))
    snapshots = work / "snapshots"
    print(f"[bench] training the example bot into {work} ...", flush=True)
    base = {**os.environ, "BOTYARD_SNAPSHOT_DIR": str(snapshots), "BOTYARD_LOG_LEVEL": "INFO", **FAST}
    server = EmbeddedNats(work / "nats")
    base["BOTYARD_NATS_URL"] = server.start()
    rows = []
    made_db = ""
    try:
        plans = [("1 node, SQLite, restarted", "", 1, True), ("2 nodes, SQLite, one killed", "", 2, False)]
        if args.postgres:
            import psycopg

            name = f"botyard_recovery_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            made_db = name
            plans.append(("2 nodes, PostgreSQL, one killed", args.postgres.rsplit("/", 1)[0] + "/" + name, 2, False))
        for i, (label, events_url, nodes, restart) in enumerate(plans):
            data = work / f"data-{i}"
            env = {**base, "BOTYARD_DATA_DIR": str(data), "BOTYARD_EVENTS_URL": events_url}
            subprocess.run([sys.executable, "-m", "botyard", "train", str(EXAMPLE)], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(f"[bench] {label} ...", flush=True)
            rows.append((label, scenario(f"s{i}", env, nodes, restart, args.conversations, work)))
    finally:
        server.stop()
        if made_db:
            import psycopg

            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{made_db}" WITH (FORCE)')
    print()
    print(f"{args.conversations} conversations, closed loop, 1 s request timeout, retried with the same turn_id; "
          f"heartbeat {FAST['BOTYARD_HEARTBEAT_SECONDS']} s, node timeout {FAST['BOTYARD_NODE_TIMEOUT']} s")
    print("| scenario | restart: start -> ready s | longest gap per conversation s: median / max | lost | recorded twice |")
    print("|---|---:|---:|---:|---:|")
    for label, r in rows:
        gaps = sorted(r["gaps"])
        restart = f"{r['restart_s']:.2f}" if r["restart_s"] is not None else "-"
        print(f"| {label} | {restart} | {gaps[len(gaps) // 2]:.2f} / {gaps[-1]:.2f} | {r['missing']} | {r['twice']} |")


if __name__ == "__main__":
    main()
