"""Replay benchmark: what-if throughput over 100,000 recorded turns, and activating a
10,000-turn conversation with and without aggregate snapshots.

    python bench/replay.py [--turns 100000] [--long 10000] [--events-url URL]

The bot is BANKING77 as a tenant would define it: 77 intents whose examples are the
train split (test never trained on), one response each. Two snapshots are trained once
and cached under --work: ``served`` (seed 1) and ``candidate`` (seed 2, the honest
retrain a what-if would compare). The recorded traffic is the test split's 3,080
utterances, drawn at random: --turns turns in 10-turn conversations, plus one
conversation of --long turns. The turns are written as the node writes them
(``Conversation.record_turn`` + group commit, replies from the served snapshot), into a
fresh SQLite database (or --events-url).

Measured, with baselines from the same process:
  * what-if over every turn of the bot (read events, replay, compare), turns/s;
  * the same replay with the serving path (``Predictor.predict`` per turn, no batching,
    no de-duplication) on a sample: the baseline the ratio is taken against;
  * what-if when every text is distinct (no repeats to share), in memory;
  * activation of the long conversation: every event replayed, and from the newest
    aggregate snapshot (taken every 100 events, as a node's snapshotter does).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from eventsourcing.application import project_aggregate

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from botyard.dialogue.responses import respond  # noqa: E402
from botyard.events.conversation import Conversation, conversation_uuid  # noqa: E402
from botyard.events.store import EventStore  # noqa: E402
from botyard.events.turns import bot_turns  # noqa: E402
from botyard.models.batch import predict_batch  # noqa: E402
from botyard.models.definition import ANNOTATION_RE, parse_bot  # noqa: E402
from botyard.models.runtime import Predictor  # noqa: E402
from botyard.ops.replay import Replay, compare  # noqa: E402
from botyard.snapshots.store import LocalSnapshotStore  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "intents" / "banking77"
TENANT, BOT = "bench-bank", "banking77"
SNAPSHOT_EVERY = 100


def read_csv(name: str) -> list[tuple[str, str]]:
    with (DATA / name).open(encoding="utf-8", newline="") as fh:
        return [(r["text"].strip(), r["category"]) for r in csv.DictReader(fh)]


def definition():
    intents: dict[str, dict] = {}
    seen: set[str] = set()
    for text, category in read_csv("train.csv"):
        label = re.sub(r"\W", "", category)  # intent names are identifiers ("reverted_card_payment?")
        key = " ".join(text.lower().split())
        if key in seen or ANNOTATION_RE.search(text):
            continue
        seen.add(key)
        intents.setdefault(label, {"examples": [], "responses": [f"Here is how {label.replace('_', ' ')} works."]})
        intents[label]["examples"].append(text)
    return parse_bot({"tenant": TENANT, "bot": BOT, "intents": intents}, source="banking77/train.csv")


def snapshots(work: Path) -> tuple[LocalSnapshotStore, str, str]:
    from botyard.training.config import TrainConfig
    from botyard.training.pipeline import train_to_store

    store = LocalSnapshotStore(work / "snapshots")
    ids = {}
    for name, seed in (("served", 1), ("candidate", 2)):
        marker = work / f"{name}.id"
        if marker.exists():
            ids[name] = marker.read_text().strip()
            continue
        print(f"[bench] training the {name} snapshot (BANKING77 train split, seed {seed}) ...", flush=True)
        started = time.perf_counter()
        info, _ = train_to_store(definition(), store, TrainConfig(epochs=10, batch_size=64, embed=128, seed=seed))
        marker.write_text(info.id)
        ids[name] = info.id
        print(f"[bench] {name}: {info.id[:12]} in {time.perf_counter() - started:.0f} s", flush=True)
    return store, ids["served"], ids["candidate"]


def record(events: EventStore, predictor: Predictor, snapshot_id: str, turns: int, long: int) -> None:
    """Write the traffic as the node does: one Conversation aggregate per conversation, group commits."""
    texts = [t for t, _ in read_csv("test.csv")]
    answers = dict(zip(texts, predict_batch(predictor, texts)))
    rng = random.Random(7)
    now = time.time() - 86_400
    conversations = [(f"c{i:06d}", 10) for i in range(turns // 10)] + [("long", long)]
    written, started = 0, time.perf_counter()
    batch: list[Conversation] = []
    for cid, length in conversations:
        conv = Conversation(tenant=TENANT, bot=BOT, conversation_id=cid)
        for n in range(1, length + 1):
            text = rng.choice(texts)
            p = answers[text]
            entities = [e.to_dict() for e in p.entities]
            conv.record_turn(
                turn=n, turn_id=None, user_text=text, intent=p.intent, confidence=p.confidence,
                reply=respond(predictor.definition, p.intent, p.fallback, n, entities), fallback=p.fallback,
                snapshot=snapshot_id, node="bench-writer", received_at=now + written * 0.01, entities=entities,
            )
            written += 1
            if cid == "long" and len(conv.pending_events) >= 500:
                events.save_all([conv])
        batch.append(conv)
        if len(batch) >= 100 or cid == "long":
            events.save_all(batch)
            batch = []
            print(f"\r[bench] recorded {written:,} turns ({written / (time.perf_counter() - started):,.0f}/s)", end="", flush=True)
    print(flush=True)
    long_id = conversation_uuid(TENANT, BOT, "long")
    # What a node's snapshotter leaves behind, in its worst case: the newest snapshot is
    # about one interval old (here 101 events), so activation replays the most it ever does.
    for version in range(SNAPSHOT_EVERY, long + 2 - SNAPSHOT_EVERY, SNAPSHOT_EVERY):
        events.snapshot_conversation(long_id, version)


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=100_000, help="turns in 10-turn conversations")
    ap.add_argument("--long", type=int, default=10_000, help="turns of the one long conversation")
    ap.add_argument("--events-url", default="", help="default: a fresh SQLite database in a temporary directory")
    ap.add_argument("--work", default=".botyard-bench/replay", help="where the trained snapshots are cached")
    ap.add_argument("--sample", type=int, default=5000, help="turns replayed one by one for the baseline")
    args = ap.parse_args(argv)

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    store, served, candidate = snapshots(work)
    with tempfile.TemporaryDirectory() as tmp:
        events = EventStore(args.events_url, tmp)
        try:
            served_p = Predictor.from_snapshot(store.load(served))
            record(events, served_p, served, args.turns, args.long)
            replay = Replay(events, store)
            replay.predictor(candidate)  # loaded (and verified) once, as a replaying admin keeps it

            # 1. what-if over every turn of the bot, from the event store.
            print("[bench] what-if over every turn ...", flush=True)
            t0 = time.perf_counter()
            report = replay.whatif(TENANT, BOT, candidate, max_changes=0)
            whatif_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            rows = bot_turns(events, TENANT, BOT)
            read_s = time.perf_counter() - t0

            # 2. the baseline: the serving path, turn by turn, on a sample.
            sample = rows[: args.sample]
            cand = replay.predictor(candidate)
            t0 = time.perf_counter()
            for r in sample:
                p = cand.predict(r.user_text)
                reply = respond(cand.definition, p.intent, p.fallback, r.turn, [e.to_dict() for e in p.entities])
                _ = (p.intent != r.intent, reply != r.reply)
            naive_rate = len(sample) / (time.perf_counter() - t0)

            # 3. every text distinct: nothing to share between turns (in memory).
            distinct = [replace(r, user_text=f"{r.user_text} {i}") for i, r in enumerate(rows[:20_000])]
            t0 = time.perf_counter()
            compare(distinct, cand, candidate, None, max_changes=0)
            distinct_rate = len(distinct) / (time.perf_counter() - t0)

            # 4. activation of the long conversation.
            long_id = conversation_uuid(TENANT, BOT, "long")
            full = timed(lambda: project_aggregate(None, events.events.get(long_id)), 5)
            snap = timed(lambda: events.load_conversation(TENANT, BOT, "long"), 50)
            newest = list(events.snapshots.get(long_id, desc=True, limit=1))[0].originator_version
            conv = events.load_conversation(TENANT, BOT, "long")
        finally:
            events.close()

    n = report["turns"]
    rate = n / whatif_s
    print()
    print(f"BANKING77 bot, {n:,} recorded turns ({report['distinct_texts']:,} distinct texts) in "
          f"{report['conversations']:,} conversations; candidate = the same bot retrained with another seed "
          f"({report['changed_intent']:,} turns, {report['changed_intent_share']:.1%}, change intent)")
    print()
    print("| what | figure | baseline | ratio |")
    print("|---|---|---|---|")
    print(f"| what-if over every turn (read + replay + compare) | {rate:,.0f} turns/s ({whatif_s:.2f} s; reading "
          f"{read_s:.2f} s of it) | serving path turn by turn: {naive_rate:,.0f} turns/s | {rate / naive_rate:.1f}× |")
    print(f"| what-if, every text distinct (20,000 turns, in memory) | {distinct_rate:,.0f} turns/s | "
          f"{naive_rate:,.0f} turns/s | {distinct_rate / naive_rate:.1f}× |")
    print(f"| activate the {conv.turns:,}-turn conversation from its snapshot (v{newest:,}, "
          f"{conv.version - newest} events after it) | p50 {statistics.median(snap):.2f} ms, max {max(snap):.2f} ms "
          f"| every event replayed: p50 {statistics.median(full):.0f} ms | {statistics.median(full) / statistics.median(snap):.0f}× |")
    print()
    print("Targets: what-if ≥ 20,000 turns/s; activation ≤ 20 ms with aggregate snapshots.")


if __name__ == "__main__":
    sys.exit(main())
