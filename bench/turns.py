"""Turn throughput and latency of one node on embedded defaults, against raw NATS echo.

    python bench/turns.py [--seconds 5] [--concurrency 1 16 64]
    python bench/turns.py --dialogue [--seconds 5] [--dialogue-rounds 2]

Starts an embedded nats-server, a raw nats-py echo responder and a `botyard node`
(SQLite, local snapshots; the example bot trained once into a temporary data dir), each
in its own process, then drives both with N closed-loop clients from this process and
prints turns/s and p50/p99 latency, and the ratio of the node to the echo. Every turn the
node acknowledges is committed to SQLite first.

``--dialogue`` instead compares the example bot with its forms against the same bot file
without its ``dialogue`` section (trained alike, served by the same node as a second bot),
at 1 and 64 clients in alternating rounds, on a script of turns that fills its forms; and
times the dialogue step alone (``dialogue.engine.step``, in this process) per turn.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgpack
import nats

from botyard.ops.nats_server import EmbeddedNats

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "shop-support.yml"
UTTERANCES = ["where is my order", "how much is shipping", "hello", "can I pay with paypal", "thanks!"]
SCRIPT = ["where is my order", "4821377", "I want to return an item", "the tent", "it is too small", "yes",
          "how much is shipping", "hello", "thanks!"]
"""A conversation that fills the example bot's forms (order status, then a return with its confirmation)."""


async def closed_loop(url: str, make_request, concurrency: int, seconds: float, *,
                      options: dict | None = None) -> tuple[int, list[float], int]:
    nc = await nats.connect(url, pending_size=64 * 1024 * 1024, **(options or {}))
    latencies: list[float] = []
    errors = 0
    stop_at = 0.0

    async def client(i: int) -> None:
        nonlocal errors
        k = 0
        while time.perf_counter() < stop_at:
            subject, data = make_request(i, k)
            t0 = time.perf_counter()
            try:
                msg = await nc.request(subject, data, timeout=10)
                if msg.data[:1] == b"\x81" and b"error" in msg.data[:8]:
                    errors += 1
            except Exception:
                errors += 1
            latencies.append(time.perf_counter() - t0)
            k += 1

    stop_at = time.perf_counter() + 0.5  # warm-up
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    latencies.clear()
    errors = 0
    start = time.perf_counter()
    stop_at = start + seconds
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - start
    await nc.close()
    return int(len(latencies) / elapsed), sorted(latencies), errors


async def first_reply(url: str) -> float:
    nc = await nats.connect(url)
    msg = await nc.request("botyard.turn.acme-shop.support",
                           msgpack.packb({"conversation_id": uuid.uuid4().hex, "text": "hello"}), timeout=10)
    assert b"error" not in msg.data, msg.data
    await nc.close()
    return time.perf_counter()


def pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] * 1000


def train_variant(work: Path, env: dict, change, name: str) -> Path:
    """Train the example bot and a variant of its file (``change(data)`` edits the parsed
    YAML in place) into ``env``'s data dir; the variant's file."""
    import yaml

    data = yaml.safe_load(EXAMPLE.read_text())
    change(data)
    variant = work / f"{name}.yml"
    variant.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    for i, bot_file in enumerate((EXAMPLE, variant), 1):
        print(f"[bench] training {bot_file.name} ({i}/2) into {work} ...", flush=True)
        subprocess.run([sys.executable, "-m", "botyard", "train", str(bot_file)], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return variant


def start_node(env: dict, log_path: Path | None = None) -> subprocess.Popen:
    """A node process; its log (stderr) goes to ``log_path`` when given."""
    log = open(log_path, "ab") if log_path else None
    node = subprocess.Popen([sys.executable, "-m", "botyard", "node"], env=env, stdout=subprocess.PIPE, stderr=log)
    if log:
        log.close()
    assert b"ready" in node.stdout.readline()
    return node


OBSERVED = {"BOTYARD_METRICS": "1", "BOTYARD_LOG_LEVEL": "INFO", "BOTYARD_LOG_FORMAT": "json"}
"""Metrics and logs on: counters and histograms, and one JSON log line per turn (to a file)."""
UNOBSERVED = {"BOTYARD_METRICS": "0", "BOTYARD_LOG_LEVEL": "WARNING"}


def scrape_ok_turns(data_dir: Path) -> float:
    import re
    import urllib.request

    url = (data_dir / "http.url").read_text().strip()
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    m = re.search(r'^botyard_replies_total\{code="ok",kind="turn"\} ([0-9.e+]+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def metrics_overhead(node, env, url, turn_req, args) -> dict:
    """Alternate rounds with metrics and JSON turn logs on and off (a node restarted each
    time), 16 clients. The logs of the "on" rounds go to a file, whose lines are counted."""
    import threading

    rates: dict[str, list[int]] = {"on": [], "off": []}
    scraped: list[float] = []
    data_dir = Path(env["BOTYARD_DATA_DIR"])
    log_path = data_dir.parent / "node-observed.log"
    for r in range(args.metrics_rounds):
        for mode in ("on", "off"):
            node.terminate()
            node.wait(20)
            node = start_node({**env, **(OBSERVED if mode == "on" else UNOBSERVED)}, log_path if mode == "on" else None)
            asyncio.run(first_reply(url))
            print(f"[bench] metrics {mode}, round {r + 1}/{args.metrics_rounds} ...", flush=True)
            if mode == "on" and not scraped:  # curl /metrics while the turns flow
                scraped.append(scrape_ok_turns(data_dir))
                later = threading.Timer(args.seconds * 0.8, lambda: scraped.append(scrape_ok_turns(data_dir)))
                later.start()
            rate, _, _ = asyncio.run(closed_loop(url, turn_req, 16, args.seconds))
            rates[mode].append(rate)
    node.terminate()
    node.wait(20)
    node = start_node({**env, **UNOBSERVED})
    lines = log_path.read_text().splitlines() if log_path.exists() else []
    turn_lines = sum(1 for line in lines if '"logger": "botyard.turns"' in line)
    return {**rates, "scraped": scraped, "node": node, "log_lines": len(lines), "turn_log_lines": turn_lines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--shards", type=int, default=1, help="conversation actors in the node")
    parser.add_argument("--events-url", default="", help="event store (default: SQLite in a temporary data dir)")
    parser.add_argument(
        "--metrics-rounds", type=int, default=3,
        help="then: rounds of 16 clients with metrics and JSON turn logs on and off, alternating; 0 to skip",
    )
    parser.add_argument("--dialogue", action="store_true", help="forms against the same bot without them (see above)")
    parser.add_argument("--dialogue-rounds", type=int, default=2, help="with --dialogue: alternating rounds per bot")
    args = parser.parse_args()
    if args.dialogue:
        compare_dialogue(args)
        return

    work = Path(tempfile.mkdtemp(prefix="botyard-bench-"))
    env = {**os.environ, "BOTYARD_DATA_DIR": str(work / "data"), "BOTYARD_LOG_LEVEL": "WARNING",
           "BOTYARD_CONVERSATION_SHARDS": str(args.shards), "BOTYARD_EVENTS_URL": args.events_url}
    print(f"[bench] training the example bot into {work} ...", flush=True)
    subprocess.run([sys.executable, "-m", "botyard", "train", str(EXAMPLE)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = EmbeddedNats(work / "nats")
    url = server.start()
    env["BOTYARD_NATS_URL"] = url
    echo = subprocess.Popen([sys.executable, str(ROOT / "bench" / "echo_server.py"), url], stdout=subprocess.PIPE)
    assert b"ready" in echo.stdout.readline()
    started = time.perf_counter()
    node = subprocess.Popen([sys.executable, "-m", "botyard", "node"], env=env, stdout=subprocess.PIPE)
    try:
        assert b"ready" in node.stdout.readline()
        first_turn = asyncio.run(first_reply(url)) - started
        print(f"[bench] node process start -> first turn answered: {first_turn:.2f} s", flush=True)
        run_id = uuid.uuid4().hex[:6]

        def echo_req(i, k):
            return "bench.echo", msgpack.packb({"conversation_id": f"c{i}", "text": UTTERANCES[k % 5]})

        def turn_req(i, k):
            return "botyard.turn.acme-shop.support", msgpack.packb(
                {"conversation_id": f"{run_id}-c{i}", "text": UTTERANCES[k % 5]})

        rows = []
        for c in args.concurrency:
            print(f"[bench] concurrency {c}: echo ...", flush=True)
            e_rate, e_lat, e_err = asyncio.run(closed_loop(url, echo_req, c, args.seconds))
            print(f"[bench] concurrency {c}: turns ...", flush=True)
            t_rate, t_lat, t_err = asyncio.run(closed_loop(url, turn_req, c, args.seconds))
            rows.append((c, e_rate, pct(e_lat, .5), pct(e_lat, .99), t_rate, pct(t_lat, .5), pct(t_lat, .99), t_err))
        overhead = metrics_overhead(node, env, url, turn_req, args) if args.metrics_rounds else None
        node = overhead.pop("node") if overhead else node
    finally:
        for proc in (node, echo):
            proc.terminate()
            proc.wait(20)
        server.stop()

    print()
    print(f"node process start -> first turn answered: {first_turn:.2f} s")
    print("| clients | echo req/s | echo p50 ms | echo p99 ms | turns/s | turn p50 ms | turn p99 ms | errors | turns / echo |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c, er, ep50, ep99, tr, tp50, tp99, terr in rows:
        print(f"| {c} | {er:,} | {ep50:.2f} | {ep99:.2f} | {tr:,} | {tp50:.2f} | {tp99:.2f} | {terr} | {tr / er:.2f} |")
    if overhead:
        on, off = overhead["on"], overhead["off"]
        print()
        print(f"metrics and JSON turn logs on vs off, 16 clients, {args.metrics_rounds} alternating rounds of {args.seconds:g} s:")
        print("| metrics + logs | turns/s per round | mean | on / off |")
        print("|---|---|---:|---:|")
        mean_on, mean_off = sum(on) / len(on), sum(off) / len(off)
        print(f"| on | {', '.join(f'{x:,}' for x in on)} | {mean_on:,.0f} | {mean_on / mean_off:.3f} |")
        print(f"| off | {', '.join(f'{x:,}' for x in off)} | {mean_off:,.0f} | |")
        print(f"`/metrics` during the first metrics-on round: botyard_replies_total{{code=\"ok\",kind=\"turn\"}} "
              f"{overhead['scraped'][0]:,.0f} -> {overhead['scraped'][1]:,.0f}")
        print(f"log lines written in the on rounds: {overhead['log_lines']:,} "
              f"({overhead['turn_log_lines']:,} turn records, JSON)")


def compare_dialogue(args) -> None:

    work = Path(tempfile.mkdtemp(prefix="botyard-bench-dialogue-"))
    env = {**os.environ, "BOTYARD_DATA_DIR": str(work / "data"), "BOTYARD_LOG_LEVEL": "WARNING",
           "BOTYARD_CONVERSATION_SHARDS": str(args.shards), "BOTYARD_EVENTS_URL": args.events_url}
    train_variant(work, env, lambda d: (d.pop("dialogue"), d.update(bot="support-plain")), "support-plain")
    step_us = dialogue_step_cost(env)
    server = EmbeddedNats(work / "nats")
    env["BOTYARD_NATS_URL"] = url = server.start()
    node = subprocess.Popen([sys.executable, "-m", "botyard", "node"], env=env, stdout=subprocess.PIPE)
    # the example bot's forms call its actions (look_up_order, create_return): served as in the demo
    actions = subprocess.Popen([sys.executable, str(ROOT / "examples" / "shop_actions.py"), "--nats", url],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    run_id = uuid.uuid4().hex[:6]
    results: dict[tuple[str, int], list[float]] = {}
    try:
        assert b"ready" in node.stdout.readline() and actions.stdout.readline().startswith(b"serving")
        asyncio.run(first_reply(url))
        for c in (1, 64):
            for r in range(args.dialogue_rounds):
                for bot in ("support-plain", "support") if r % 2 == 0 else ("support", "support-plain"):
                    def req(i, k, bot=bot, tag=f"{run_id}-{bot}-{c}-{r}"):
                        # each client walks the script in its own conversation, a new one per pass
                        return f"botyard.turn.acme-shop.{bot}", msgpack.packb(
                            {"conversation_id": f"{tag}-c{i}-{k // len(SCRIPT)}", "text": SCRIPT[k % len(SCRIPT)]})

                    print(f"[bench] {c} clients, round {r + 1}/{args.dialogue_rounds}: {bot} ...", flush=True)
                    rate, lat, errors = asyncio.run(closed_loop(url, req, c, args.seconds))
                    assert errors == 0, f"{errors} errors"
                    results.setdefault((bot, c), []).append(rate)
    finally:
        node.terminate()
        node.wait(20)
        actions.terminate()
        actions.wait(20)
        server.stop()
    print()
    print(f"forms vs the same bot without them, {args.dialogue_rounds} alternating rounds of {args.seconds:g} s, "
          f"script of {len(SCRIPT)} turns:")
    print("| clients | without dialogue turns/s | with forms turns/s | with / without |")
    print("|---:|---:|---:|---:|")
    for c in (1, 64):
        a, b = results[("support-plain", c)], results[("support", c)]
        ma, mb = sum(a) / len(a), sum(b) / len(b)
        print(f"| {c} | {', '.join(f'{x:,.0f}' for x in a)} (mean {ma:,.0f}) | {', '.join(f'{x:,.0f}' for x in b)} "
              f"(mean {mb:,.0f}) | {mb / ma:.3f} |")
    print()
    print("dialogue.engine.step per turn, in this process, on the script's understood turns:")
    print("| bot | µs per turn |")
    print("|---|---:|")
    for name, us in step_us.items():
        print(f"| {name} | {us:.1f} |")


def dialogue_step_cost(env: dict) -> dict[str, float]:
    """µs per ``engine.step`` over the script, understood by the trained model (classified
    once, outside the timing), for the example bot and for the same bot without dialogue."""
    from botyard.dialogue import engine
    from botyard.dialogue.spec import DialogueSpec, spec_of
    from botyard.dialogue.state import DialogueState
    from botyard.dialogue.turn import Responses, Understanding
    from botyard.models.runtime import Predictor
    from botyard.snapshots.store import LocalSnapshotStore, latest

    store = LocalSnapshotStore(Path(env["BOTYARD_DATA_DIR"]) / "snapshots")
    predictor = Predictor.from_snapshot(store.load(latest(store, "acme-shop", "support").id))
    definition = predictor.definition
    understood = [Understanding.of(predictor.predict(t), t) for t in SCRIPT]
    out = {}
    for name, spec in (("with forms", spec_of(definition)), ("without dialogue", DialogueSpec())):
        responses = Responses.of(definition)
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < 1.0:
            state = DialogueState()
            for number, u in enumerate(understood, 1):
                state = engine.step(spec, responses, state, u, number).state
                n += 1
        out[name] = (time.perf_counter() - started) / n * 1e6
    return out


if __name__ == "__main__":
    main()
