"""System entities on the turn path: microseconds per utterance of the entity matchers
(``Matchers.find``, what :meth:`Predictor.prediction` runs after the network) for a bot that
declares no system entity and for the same bot declaring them.

    python bench/entities.py [--repeat 7] [--language ko]

The bot is the example bot's entities (a learned country, a list of products, a regex order
number), alone and with system entities added: all six kinds, or one kind at a time. The
utterances: the ordinary ones of the phrasing table (no such entity: most turns), its
phrasings (each has one), and the test splits of HWU64 (1,076 assistant requests: alarms,
calendars, ...) and BANKING77 (3,080 banking questions, some with amounts), when shared/data
has them. Each figure is the mean over the set, the best of --repeat passes (one process,
one thread). "found" is the share of utterances with at least one system entity.

``--language ko``: the Korean example bot's entities (its list matches at Kiwi's morpheme
cuts), the Korean table (tests/data/system-entities-ko.yml) and 3i4K's test split (6,121
Korean utterances of every speech act, shared/data/intents/ko-3i4k).
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
TABLES = {"en": ROOT / "tests" / "data" / "system-entities.yml", "ko": ROOT / "tests" / "data" / "system-entities-ko.yml"}
BOTS = {"en": ROOT / "examples" / "shop-support.yml", "ko": ROOT / "examples" / "shop-support-ko.yml"}
TABLE = yaml.safe_load(TABLES["en"].read_text())
NOW = datetime.fromisoformat(TABLE["now"]).timestamp()
DATA = ROOT.parent / "shared" / "data" / "intents"


def sets(language: str = "en") -> dict[str, list[str]]:
    table = yaml.safe_load(TABLES[language].read_text())
    out = {"ordinary (table)": list(table["none"]), f"the {len(table['phrasings'])} phrasings (table)": [r[1] for r in table["phrasings"]]}
    if language == "ko":
        kor = DATA / "ko-3i4k" / "test.tsv"
        if kor.exists():
            out["3i4K test"] = [line.split("\t", 1)[1] for line in kor.read_text(encoding="utf-8").splitlines() if "\t" in line]
        return out
    hwu = DATA / "hwu64" / "test" / "seq.in"
    if hwu.exists():
        out["HWU64 test"] = hwu.read_text().splitlines()
    banking = DATA / "banking77" / "test.csv"
    if banking.exists():
        with banking.open(encoding="utf-8", newline="") as fh:
            out["BANKING77 test"] = [r["text"] for r in csv.DictReader(fh)]
    return out


def matchers(kinds: tuple[str, ...], language: str = "en") -> Matchers:
    """The example bot's entities plus system entities of ``kinds``."""
    example = load_bot(BOTS[language])
    system = tuple(Entity(f"sys_{k}", "system", kind=k) for k in kinds)
    zone = yaml.safe_load(TABLES[language].read_text())["timezone"]
    definition = replace(example, entities=example.entities + system, timezone=zone)
    return Matchers(definition.entities, language=definition.language, timezone=definition.timezone)


def per_utterance(m: Matchers, texts: list[str], repeat: int, now: float = NOW) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for text in texts:
            m.find(text, now)
        best = min(best, time.perf_counter() - started)
    return best / len(texts) * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--language", choices=sorted(BOTS), default="en")
    args = parser.parse_args(argv)
    texts = sets(args.language)
    now = datetime.fromisoformat(yaml.safe_load(TABLES[args.language].read_text())["now"]).timestamp()
    configs = [("no system entity", ()), ("all six kinds", KINDS), *((f"only {k}", (k,)) for k in KINDS)]
    print(f"µs per utterance of Matchers.find (the {args.language} example bot's list and regex entities, "
          "plus the system entities named)\n")
    print("| bot declares | " + " | ".join(texts) + " |")
    print("|---|" + "---|" * len(texts))
    for label, kinds in configs:
        m = matchers(kinds, args.language)
        cells = []
        for batch in texts.values():
            us = per_utterance(m, batch, args.repeat, now)
            found = sum(1 for t in batch if any(e.extractor == "system" for e in m.find(t, now))) / len(batch)
            cells.append(f"{us:.1f}" + (f" (found {found:.0%})" if kinds else ""))
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
