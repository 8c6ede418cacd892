"""System entities on the turn path: microseconds per utterance of the entity matchers
(``Matchers.find``, what :meth:`Predictor.prediction` runs after the network) for a bot that
declares no system entity and for the same bot declaring them.

    python bench/entities.py [--repeat 7]

The bot is the example bot's entities (a learned country, a list of products, a regex order
number), alone and with system entities added: all six kinds, or one kind at a time. The
utterances: the ordinary ones of the phrasing table (no such entity: most turns), its 85
phrasings (each has one), and the test splits of HWU64 (1,076 assistant requests: alarms,
calendars, ...) and BANKING77 (3,080 banking questions, some with amounts), when shared/data
has them. Each figure is the mean over the set, the best of --repeat passes (one process,
one thread). "found" is the share of utterances with at least one system entity.
"""

from __future__ import annotations

import argparse
import csv
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import yaml

from botyard.models.definition import Entity, load_bot
from botyard.models.entities import Matchers
from botyard.models.system.kinds import KINDS

ROOT = Path(__file__).resolve().parent.parent
TABLE = yaml.safe_load((ROOT / "tests" / "data" / "system-entities.yml").read_text())
NOW = datetime.fromisoformat(TABLE["now"]).timestamp()
DATA = ROOT.parent / "shared" / "data" / "intents"


def sets() -> dict[str, list[str]]:
    out = {"ordinary (table)": list(TABLE["none"]), "phrasings (table)": [r[1] for r in TABLE["phrasings"]]}
    hwu = DATA / "hwu64" / "test" / "seq.in"
    if hwu.exists():
        out["HWU64 test"] = hwu.read_text().splitlines()
    banking = DATA / "banking77" / "test.csv"
    if banking.exists():
        with banking.open(encoding="utf-8", newline="") as fh:
            out["BANKING77 test"] = [r["text"] for r in csv.DictReader(fh)]
    return out


def matchers(kinds: tuple[str, ...]) -> Matchers:
    """The example bot's entities plus system entities of ``kinds``."""
    example = load_bot(ROOT / "examples" / "shop-support.yml")
    system = tuple(Entity(f"sys_{k}", "system", kind=k) for k in kinds)
    definition = replace(example, entities=example.entities + system, timezone=TABLE["timezone"])
    return Matchers(definition.entities, language=definition.language, timezone=definition.timezone)


def per_utterance(m: Matchers, texts: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for text in texts:
            m.find(text, NOW)
        best = min(best, time.perf_counter() - started)
    return best / len(texts) * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    texts = sets()
    configs = [("no system entity", ()), ("all six kinds", KINDS), *((f"only {k}", (k,)) for k in KINDS)]
    print("µs per utterance of Matchers.find (the example bot's list and regex entities, plus the system entities named)\n")
    print("| bot declares | " + " | ".join(texts) + " |")
    print("|---|" + "---|" * len(texts))
    for label, kinds in configs:
        m = matchers(kinds)
        cells = []
        for batch in texts.values():
            us = per_utterance(m, batch, args.repeat)
            found = sum(1 for t in batch if any(e.extractor == "system" for e in m.find(t, NOW))) / len(batch)
            cells.append(f"{us:.1f}" + (f" (found {found:.0%})" if kinds else ""))
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
