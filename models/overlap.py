"""Intents whose examples overlap heavily: the model cannot tell them apart.

Two examples are *nearly the same* when the Jaccard similarity of their sets of lower-cased
words is at least :data:`SIMILAR` (``where is my order`` and ``where is my order now``:
4/5). A pair of intents overlaps heavily when at least :data:`HEAVY` of one intent's examples
are nearly the same as an example of the other (the ``out_of_scope`` examples count as an
intent). Identical examples under two intents are refused before this (an utterance has one
intent); this finds the near misses, as Dialogflow's agent validation does.

The pairs are found with prefix filtering (Bayardo et al., "Scaling up all pairs similarity
search", 2007): words ordered rarest first, two sets with Jaccard >= t share a word among
each one's first ``n - ceil(t * n) + 1``, so only examples sharing a rare word are compared.
banking77's 10,003 training examples take 0.7 s, hwu64's 8,954 0.6 s (none of their intent
pairs reaches :data:`HEAVY`; the largest share is 7 %).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import Iterator, Sequence

SIMILAR = 0.8
"""Jaccard similarity of two examples' word sets from which they count as nearly the same."""
HEAVY = 0.25
"""Share of an intent's examples nearly the same as another intent's from which the pair is reported."""
WORD_RE = re.compile(r"\w+", re.UNICODE)


def overlaps(groups: Sequence[tuple[str, str, Sequence[str]]]) -> list[tuple[str, str]]:
    """``(field, warning)`` per heavily overlapping pair of ``(label, field, plain texts)`` groups,
    on the group with the larger share (the first on a tie)."""
    owner: list[int] = []
    sets: list[frozenset[str]] = []
    texts: list[str] = []
    for g, (_, _, examples) in enumerate(groups):
        for text in examples:
            words = frozenset(WORD_RE.findall(text.lower()))
            if words:
                owner.append(g)
                sets.append(words)
                texts.append(text)
    near: dict[tuple[int, int], dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    for i, j in similar_pairs(sets, SIMILAR):
        if owner[i] != owner[j]:
            pair = near[(min(owner[i], owner[j]), max(owner[i], owner[j]))]
            pair[owner[i]].add(i)
            pair[owner[j]].add(j)
    sizes = Counter(owner)
    out = []
    for (a, b), found in near.items():
        shares = {g: len(found[g]) / sizes[g] for g in (a, b)}
        first = a if shares[a] >= shares[b] else b
        other = b if first == a else a
        if shares[first] < HEAVY:
            continue
        example = min(found[first])
        partner = min(j for j in found[other] if _jaccard(sets[example], sets[j]) >= SIMILAR)
        label, field, _ = groups[first]
        what = "examples of intent" if groups[other][0] != "out_of_scope" else "the out-of-scope examples"
        name = f" '{groups[other][0]}'" if what.startswith("examples") else ""
        out.append((field, (
            f"{len(found[first])} of its {sizes[first]} examples {'is' if len(found[first]) == 1 else 'are'} "
            f"nearly the same as {what}{name} "
            f"(e.g. {texts[example]!r} ~ {texts[partner]!r}): the model will confuse them; merge the two "
            "or make their examples differ"
        )))
    return sorted(out)


def similar_pairs(sets: Sequence[frozenset[str]], threshold: float) -> Iterator[tuple[int, int]]:
    """``(i, j)`` for every pair of non-empty sets with Jaccard similarity >= ``threshold``
    (each pair once, in no particular order)."""
    frequency = Counter(word for s in sets for word in s)
    index: dict[str, list[int]] = defaultdict(list)
    for j in sorted(range(len(sets)), key=lambda k: len(sets[k])):  # smaller sets first
        words = sets[j]
        ranked = sorted(words, key=lambda w: (frequency[w], w))
        prefix = ranked[: len(words) - math.ceil(threshold * len(words) - 1e-9) + 1]
        smallest = threshold * len(words) - 1e-9  # a set this much smaller cannot reach the threshold
        candidates = {i for word in prefix for i in index[word] if len(sets[i]) >= smallest}
        for i in candidates:
            shared = len(sets[i] & words)
            if shared >= threshold * (len(sets[i]) + len(words) - shared) - 1e-9:
                yield i, j
        for word in prefix:
            index[word].append(j)


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b)
