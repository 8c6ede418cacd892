"""What an action costs a turn: the example bot's order-lookup turn over an action, against the
same turn without one, and the action's round trip against a raw nats-py request/reply.

    python bench/actions.py [--seconds 5] [--rounds 2] [--concurrency 1 16]

Trains the example bot (its ``order_status`` form calls ``look_up_order``) and the same file
with the form's ``action`` removed (bot ``support-noaction``), starts an embedded nats-server,
a ``botyard node`` and a plain nats-py action responder (each its own process), then drives
"where is my order 4821377" (the form completes on every turn) with N closed-loop clients,
both bots in alternating rounds. The action's round trip is what the node recorded for each
call (``ActionCalled.duration_ms``: encode, request, reply, decode), compared with the same
request sent raw from this process to the same responder in the same sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from turns import closed_loop, first_reply, pct, train_variant  # noqa: E402

from botyard.ops.nats_server import EmbeddedNats  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "shop-support.yml"
TEXT = "where is my order 4821377"
RESPONDER = """
import asyncio, json, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1])
    reply = json.dumps({"text": "Order 4821377 shipped on Monday and should reach you on Thursday."}).encode()
    async def handle(msg):
        await msg.respond(reply)
    await nc.subscribe("botyard.action.acme-shop.support.look_up_order", queue="bench", cb=handle)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def raw_round_trips(url: str, seconds: float) -> list[float]:
    """One client requesting the action's subject directly, with a body like the node's."""
    body = json.dumps({"action": "look_up_order", "idempotency_key": "c:1:0", "attempt": 1, "tenant": "acme-shop",
                       "bot": "support", "conversation_id": "c", "turn": 1, "turn_id": None, "intent": "order_status",
                       "confidence": 0.99, "entities": [{"entity": "order_number", "value": "4821377", "start": 18, "end": 25}],
                       "slots": {"order_number": "4821377"}, "text": TEXT, "form": "order_status", "sent_at": time.time()}).encode()

    async def go() -> list[float]:
        nc = await nats.connect(url)
        out: list[float] = []
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            await nc.request("botyard.action.acme-shop.support.look_up_order", body, timeout=5,
                             headers={"Content-Type": "application/json", "Botyard-Idempotency-Key": "c:1:0"})
            out.append(time.perf_counter() - t0)
        await nc.close()
        return sorted(out)

    return asyncio.run(go())


def recorded_durations(env: dict, since: float, until: float) -> list[float]:
    from botyard.events.store import EventStore
    from botyard.events.turns import bot_turns

    store = EventStore(env["BOTYARD_EVENTS_URL"], Path(env["BOTYARD_DATA_DIR"]))
    try:
        rows = bot_turns(store, "acme-shop", "support", since=since, until=until)
        return sorted(d["duration_ms"] / 1000 for r in rows for d in r.dialogue if d["name"] == "ActionCalled" and d["status"] == "ok")
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per bot and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="botyard-bench-actions-"))
    env = {**os.environ, "BOTYARD_DATA_DIR": str(work / "data"), "BOTYARD_LOG_LEVEL": "WARNING",
           "BOTYARD_EVENTS_URL": f"sqlite:///{work / 'data' / 'events.db'}"}
    train_variant(work, env, lambda d: (d.update(bot="support-noaction"), d["dialogue"]["forms"]["order_status"].pop("action")),
                  "support-noaction")
    server = EmbeddedNats(work / "nats")
    env["BOTYARD_NATS_URL"] = url = server.start()
    responder = subprocess.Popen([sys.executable, "-c", RESPONDER, url], stdout=subprocess.PIPE)
    node = subprocess.Popen([sys.executable, "-m", "botyard", "node"], env=env, stdout=subprocess.PIPE)
    run_id = uuid.uuid4().hex[:6]
    results: dict[tuple[str, int], list[tuple[int, list[float], int]]] = {}
    try:
        assert b"ready" in responder.stdout.readline() and b"ready" in node.stdout.readline()
        asyncio.run(first_reply(url))
        windows: dict[int, list[tuple[float, float]]] = {}
        for c in args.concurrency:
            for r in range(args.rounds):
                for bot in ("support-noaction", "support") if r % 2 == 0 else ("support", "support-noaction"):
                    def req(i, k, bot=bot, tag=f"{run_id}-{bot}-{c}-{r}"):
                        return f"botyard.turn.acme-shop.{bot}", msgpack.packb({"conversation_id": f"{tag}-c{i}", "text": TEXT})

                    print(f"[bench] {c} clients, round {r + 1}/{args.rounds}: {bot} ...", flush=True)
                    started = time.time()
                    rate, lat, errors = asyncio.run(closed_loop(url, req, c, args.seconds))
                    results.setdefault((bot, c), []).append((rate, lat, errors))
                    if bot == "support":
                        windows.setdefault(c, []).append((started, time.time()))
        print("[bench] raw nats-py request/reply to the same responder ...", flush=True)
        raw = raw_round_trips(url, args.seconds)
    finally:
        node.terminate()
        node.wait(20)
        responder.kill()
        responder.wait()
        server.stop()
    recorded = {c: sorted(d for w in ws for d in recorded_durations(env, *w)) for c, ws in windows.items()}

    print()
    print(f"order-lookup turn ('{TEXT}'), with the action vs without, {args.rounds} alternating rounds of {args.seconds:g} s:")
    print("| clients | without: turns/s | p50 ms | p99 ms | with action: turns/s | p50 ms | p99 ms | added p50 ms | added p99 ms "
          "| turns/s with / without | errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in args.concurrency:
        a, b = results[("support-noaction", c)], results[("support", c)]
        ra, rb = statistics.mean(x[0] for x in a), statistics.mean(x[0] for x in b)
        la, lb = sorted(v for x in a for v in x[1]), sorted(v for x in b for v in x[1])
        errors = sum(x[2] for x in a + b)
        print(f"| {c} | {ra:,.0f} | {pct(la, .5):.2f} | {pct(la, .99):.2f} | {rb:,.0f} | {pct(lb, .5):.2f} | {pct(lb, .99):.2f} "
              f"| {pct(lb, .5) - pct(la, .5):+.2f} | {pct(lb, .99) - pct(la, .99):+.2f} | {rb / ra:.2f} | {errors} |")
    print()
    print("the action's round trip: as the node recorded each call vs raw nats-py request/reply, same responder:")
    print("| | calls | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|")
    print(f"| raw nats-py request/reply (1 client) | {len(raw):,} | {pct(raw, .5):.3f} | {pct(raw, .99):.3f} |")
    for c, durations in recorded.items():
        print(f"| botyard's action call, {c} client(s) | {len(durations):,} | {pct(durations, .5):.3f} | {pct(durations, .99):.3f} |")
    one = recorded[min(recorded)]  # the fewest clients: the fair comparison with the one raw client
    print(f"action / raw at p50, {min(recorded)} client(s): {pct(one, .5) / pct(raw, .5):.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
