"""Sentence encoder cost: one utterance at a time against turns encoded together.

    python bench/encoder.py                 # HWU64 test utterances, batches of 1, 4, 16, 64
    python bench/encoder.py --utterances 256

This prints milliseconds per utterance for each batch size on one BLAS thread, against
batch size 1 (the baseline: what each turn costs alone) as a ratio, and then what a node
does with turns that arrive together (``SentenceEncoder.prime``): bursts of 16, in batches
of ``PRIME_BATCH`` spread over the cores (wall time per utterance).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from botyard.models import blas, encoder

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "intents" / "hwu64" / "test" / "seq.in"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--utterances", type=int, default=128, help="HWU64 test utterances to encode per batch size")
    parser.add_argument("--sizes", default="1,4,16,64", help="batch sizes (comma-separated)")
    args = parser.parse_args(argv)
    blas.single_threaded()
    enc = encoder.available()
    if enc is None:
        raise SystemExit("the encoder is not installed: bash training/install-vectors.sh")
    utterances = [line.split() for line in DATA.read_text(encoding="utf-8").splitlines()][: args.utterances]
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        enc.encode_many(utterances[:size], batch=size)  # warm
        started = time.perf_counter()
        for i in range(0, len(utterances), size):
            enc.encode_many(utterances[i : i + size], batch=size)
        per_utt = (time.perf_counter() - started) / len(utterances)
        rows.append((size, per_utt))
        print(f"  batch {size}: {per_utt * 1e3:.2f} ms per utterance", file=sys.stderr, flush=True)
    burst = 16
    started = time.perf_counter()
    for i in range(0, len(utterances), burst):
        enc.encode_many(utterances[i : i + burst], batch=encoder.PRIME_BATCH)
    primed = (time.perf_counter() - started) / len(utterances)
    print(f"  bursts of {burst} as a node primes them: {primed * 1e3:.2f} ms per utterance", file=sys.stderr, flush=True)
    base = rows[0][1]
    print()
    print("| batch size | ms per utterance | utterances/s (one core) | vs one at a time |")
    print("|---|---|---|---|")
    for size, per_utt in rows:
        print(f"| {size} | {per_utt * 1e3:.2f} | {1 / per_utt:.0f} | {base / per_utt:.1f}× |")
    cores = os.cpu_count() or 1
    print(f"| bursts of {burst}, batches of {encoder.PRIME_BATCH} on {cores} cores (`prime`) | {primed * 1e3:.2f} | "
          f"{1 / primed:.0f} (all cores) | {base / primed:.1f}× |")
    lengths = [len(enc.ids(u)) for u in utterances]
    print(f"\n{len(utterances)} utterances, {np.mean(lengths):.1f} WordPiece tokens on average ([CLS] and [SEP] included)")


if __name__ == "__main__":
    main()
