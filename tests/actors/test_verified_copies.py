"""The loader's verified copies: bounded by bytes, least recently used dropped first."""

import numpy as np

from botyard.actors.loader import VerifiedCopies
from botyard.snapshots.format import Snapshot


def snap(i: int, size: int) -> Snapshot:
    return Snapshot(f"{i:032x}", {"tenant": "t", "bot": "b"}, {"w": np.zeros(1, np.float32)}, size)


def test_copies_stay_within_their_budget_and_drop_the_least_recently_used():
    copies = VerifiedCopies(budget=100)
    for i in range(3):
        copies.keep(snap(i, 40))  # 120 bytes asked, 100 allowed: the first goes
    assert list(copies.held) == [f"{1:032x}", f"{2:032x}"] and copies.bytes == 80
    assert copies.get(f"{1:032x}") is not None  # used: now the youngest
    copies.keep(snap(3, 40))
    assert list(copies.held) == [f"{1:032x}", f"{3:032x}"] and copies.bytes == 80
    copies.keep(snap(4, 101))  # larger than the whole budget: not kept
    assert f"{4:032x}" not in copies.held and copies.hits == 1
    assert copies.get(f"{0:032x}") is None
