"""Placement without a coordinator: weighted rendezvous hashing, as pure functions.

Every node computes the same answers from the same membership, so no node decides for
the others. A bot's copies are the ``copies`` nodes that rank highest for the bot's key;
a conversation's owner (its one writer) is the highest-ranking of its bot's copies for
the conversation's key. When a node leaves, only the keys it held move; when one joins,
it takes about its capacity's share.
"""

from __future__ import annotations

import hashlib
import math
from typing import Mapping, Sequence

_SCALE = float(1 << 64)


def _unit(node: str, key: str) -> float:
    """A uniform number in (0, 1) for the pair, the same on every machine."""
    digest = hashlib.blake2b(f"{node}\x00{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / _SCALE


def score(node: str, capacity: float, key: str) -> float:
    """Weighted rendezvous score: a node of twice the capacity wins twice as many keys."""
    return -capacity / math.log(_unit(node, key))


def rank(key: str, nodes: Mapping[str, float]) -> list[str]:
    """Node ids, best first, for ``key``; ``nodes`` maps id to capacity (> 0)."""
    return sorted(nodes, key=lambda n: (-score(n, nodes[n], key), n))


def copies_for(bot_key: str, nodes: Mapping[str, float], copies: int) -> list[str]:
    return rank(bot_key, nodes)[: max(1, copies)]


def owner(conversation_key: str, copies: Sequence[str], nodes: Mapping[str, float]) -> str:
    return max(copies, key=lambda n: (score(n, nodes[n], conversation_key), n))
