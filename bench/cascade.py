"""The cascade under load: a BANKING77 bot (77 intents) as the default bag model and as a
cascade (``botyard train --cascade``), served by one node, driven in alternating rounds.

    python bench/cascade.py [--seconds 5] [--rounds 2] [--concurrency 8 64] [--cache DIR] [--tuned]

Trains both bots from BANKING77's train split with ``--folds 1 --no-final-fit`` (one
training each; the cascade's takes minutes) into a data dir under ``--cache``
(default ``~/.cache/botyard/bench-cascade``) and reuses them on later runs (``--retrain``
to train again). Each run copies that data dir to a temporary one, starts an embedded
nats-server and a ``botyard node`` on it, and drives each bot with N closed-loop clients
from this process over real NATS, the two bots in alternating rounds, every client walking
BANKING77's test split from its own offset (a new conversation per round). Prints turns/s,
p50/p99 latency and the ratio cascade / default per concurrency.

The node's sentence-encoder cache is cut to ``--encoder-cache`` utterances (default 128,
``BOTYARD_ENCODER_CACHE``): with the default 1,024 it would hold every test utterance the
cascade sends on (211 of 3,080) after the first pass, and the rounds would measure the cache.
``--only cascade`` drives one bot alone (to profile the node without the other's turns).
``--tuned`` adds the tuned cascade (``botyard train --tuned --tuned-layers 3``, trained once
into the same cache; its outputs' cache is cut the same way).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgpack
import nats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from turns import closed_loop, pct  # noqa: E402

from botyard.ops.nats_server import EmbeddedNats  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "intents" / "banking77"
TENANT = "bench"
BOTS = {"default": ("banking77", []), "cascade": ("banking77-cascade", ["--cascade"])}
"""Variant -> (bot name, extra ``botyard train`` flags)."""
TUNED = {"tuned": ("banking77-tuned", ["--tuned", "--tuned-layers", "3"])}
"""With ``--tuned``: the tuned cascade too (the top 3 of MiniLM's 6 layers fine-tuned, to keep its training
short; serving runs all six layers whichever were tuned)."""
CHEAP = ["--folds", "1", "--no-final-fit"]
"""One training per bot: calibrated on one held-out tenth, not trained again on everything."""


def rows(split: str) -> list[tuple[str, str]]:
    with (DATA / f"{split}.csv").open(encoding="utf-8", newline="") as fh:
        return [(r["text"], r["category"]) for r in csv.DictReader(fh)]


def intent_name(label: str) -> str:
    """A valid intent name for a BANKING77 label (``reverted_card_payment?``)."""
    return re.sub(r"\W", "", label)


def bot_file(path: Path, bot: str) -> Path:
    """A bot file with BANKING77's training utterances as its intents' examples."""
    import yaml

    intents: dict[str, dict] = {}
    for text, label in rows("train"):
        intents.setdefault(intent_name(label), {"examples": [], "responses": [label]})["examples"].append(text)
    data = {"tenant": TENANT, "bot": bot, "description": "BANKING77 (bench/cascade.py)", "intents": intents}
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def trained(cache: Path, retrain: bool, bots: dict[str, tuple[str, list[str]]]) -> Path:
    """The cached data dir with both bots trained and promoted (training them if missing)."""
    from botyard.snapshots.store import LocalSnapshotStore, latest

    data = cache / "data"
    if retrain and data.exists():
        shutil.rmtree(data)
    cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BOTYARD_DATA_DIR": str(data), "BOTYARD_LOG_LEVEL": "WARNING", "BOTYARD_NATS_URL": ""}
    for i, (variant, (bot, flags)) in enumerate(bots.items(), 1):
        store = LocalSnapshotStore(data / "snapshots")
        if (data / "snapshots").exists() and latest(store, TENANT, bot) is not None:
            print(f"[bench] {variant}: {TENANT}/{bot} cached in {data}", flush=True)
            continue
        path = bot_file(cache / f"{bot}.yml", bot)
        print(f"[bench] training {variant} ({i}/{len(bots)}): botyard train {path.name} {' '.join(CHEAP + flags)} ...",
              flush=True)
        started = time.perf_counter()
        # stderr passes through: the training's progress bar
        subprocess.run([sys.executable, "-m", "botyard", "train", str(path), *CHEAP, *flags], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        print(f"[bench] {variant} trained in {time.perf_counter() - started:.0f} s", flush=True)
    return data


async def warm(url: str, bot: str, texts: list[str]) -> None:
    """One turn of each text (the model loads, the caches of common tokens fill)."""
    nc = await nats.connect(url)
    for text in texts:
        msg = await nc.request(f"botyard.turn.{TENANT}.{bot}",
                               msgpack.packb({"conversation_id": uuid.uuid4().hex, "text": text}), timeout=60)
        assert b"error" not in msg.data[:16], msg.data
    await nc.close()


def summary(values: list[float]) -> str:
    return f"{', '.join(f'{v:,.0f}' for v in values)} (mean {sum(values) / len(values):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="per round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per bot and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "botyard" / "bench-cascade")
    parser.add_argument("--retrain", action="store_true", help="train both bots again")
    parser.add_argument("--encoder-cache", type=int, default=128, help="the node's sentence-encoder cache (utterances)")
    parser.add_argument("--only", choices=[*BOTS, *TUNED], help="drive one bot alone (to profile the node)")
    parser.add_argument("--tuned", action="store_true", help="the tuned cascade (--tuned) too, against the same default")
    args = parser.parse_args()

    bots = {**BOTS, **(TUNED if args.tuned or args.only in TUNED else {})}
    data = trained(args.cache, args.retrain, bots)
    test = [text for text, _ in rows("test")]
    work = Path(tempfile.mkdtemp(prefix="botyard-bench-cascade-"))
    shutil.copytree(data, work / "data", ignore=shutil.ignore_patterns("nats", "*.url", "*.pid", "*.lock"))
    env = {**os.environ, "BOTYARD_DATA_DIR": str(work / "data"), "BOTYARD_LOG_LEVEL": "WARNING",
           "BOTYARD_ENCODER_CACHE": str(args.encoder_cache)}
    server = EmbeddedNats(work / "nats")
    env["BOTYARD_NATS_URL"] = url = server.start()
    node = subprocess.Popen([sys.executable, "-m", "botyard", "node"], env=env, stdout=subprocess.PIPE)
    run_id = uuid.uuid4().hex[:6]
    results: dict[tuple[str, int], list[tuple[int, list[float], int]]] = {}
    try:
        assert b"ready" in node.stdout.readline()
        for bot, _ in bots.values():
            asyncio.run(warm(url, bot, test[:20]))
        variants = [args.only] if args.only else list(bots)
        for c in args.concurrency:
            stride = len(test) // c  # a client reaches where its neighbour started after the whole test split
            for r in range(args.rounds):
                for variant in variants if r % 2 == 0 else variants[::-1]:
                    bot = bots[variant][0]

                    def req(i, k, bot=bot, tag=f"{run_id}-{variant}-{c}-{r}", stride=stride):
                        return f"botyard.turn.{TENANT}.{bot}", msgpack.packb(
                            {"conversation_id": f"{tag}-c{i}", "text": test[(i * stride + k) % len(test)]})

                    print(f"[bench] {c} in flight, round {r + 1}/{args.rounds}: {variant} ...", flush=True)
                    rate, lat, errors = asyncio.run(closed_loop(url, req, c, args.seconds))
                    results.setdefault((variant, c), []).append((rate, lat, errors))
    finally:
        node.terminate()
        node.wait(60)
        server.stop()

    print()
    print(f"BANKING77 (77 intents), default bag model against {' and '.join(variants[1:]) or variants[0]}, one node, "
          f"{args.rounds} alternating rounds of {args.seconds:g} s per bot; encoder cache {args.encoder_cache} utterances:")
    print("| in flight | bot | turns/s | p50 / p99 ms | errors | against default |")
    print("|---:|---|---|---:|---:|---:|")
    for c in args.concurrency:
        means = {}
        for variant in variants:
            runs = results[(variant, c)]
            lat = sorted(x for _, lats, _ in runs for x in lats)
            means[variant] = sum(rate for rate, _, _ in runs) / len(runs)
            errors = sum(e for _, _, e in runs)
            ratio = f"{means[variant] / means['default']:.2f}" if "default" in means and variant != "default" else ""
            print(f"| {c} | {variant} | {summary([rate for rate, _, _ in runs])} | {pct(lat, .5):.1f} / {pct(lat, .99):.1f} "
                  f"| {errors} | {ratio} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
