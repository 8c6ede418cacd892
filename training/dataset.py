"""Training examples: tokens, an intent label and one BIO tag per token."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Sequence

from botyard.models.definition import OUT_OF_SCOPE, BotDefinition
from botyard.models.text import bio_tags, parse_annotated, tokenize, unescape


@dataclass(frozen=True, slots=True)
class Example:
    tokens: tuple[str, ...]
    intent: str
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Dataset:
    examples: tuple[Example, ...]
    labels: tuple[str, ...]
    tags: tuple[str, ...]
    """``O`` first, then ``B-x``/``I-x`` for every learned entity; just ``("O",)`` without any."""


def make_dataset(examples: Sequence[Example], labels: Sequence[str] | None = None) -> Dataset:
    labels = tuple(labels) if labels is not None else tuple(sorted({e.intent for e in examples}))
    entities = sorted({t[2:] for e in examples for t in e.tags if t != "O"})
    tags = ("O", *[f"{p}-{name}" for name in entities for p in ("B", "I")])
    return Dataset(tuple(examples), labels, tags)


def from_definition(definition: BotDefinition) -> Dataset:
    """The bot file's examples; only ``learned`` entities become tags (lists and regexes match at serving)."""
    learned = {e.name for e in definition.entities if e.type == "learned"}
    examples = []
    for intent in definition.intents:
        for raw in intent.examples:
            text, spans = parse_annotated(raw)
            tokens = tokenize(text)
            tags = bio_tags(tokens, [s for s in spans if s.entity in learned])
            examples.append(Example(tuple(t.text for t in tokens), intent.name, tuple(tags)))
    for raw in definition.out_of_scope:
        tokens = tokenize(unescape(raw))  # no annotations, but maybe literal brackets
        examples.append(Example(tuple(t.text for t in tokens), OUT_OF_SCOPE, ("O",) * len(tokens)))
    labels = [i.name for i in definition.intents] + ([OUT_OF_SCOPE] if definition.out_of_scope else [])
    return make_dataset(examples, labels)


def split(dataset: Dataset, share: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out ``share`` of each label's examples (labels with fewer than 5 keep all)."""
    rng = random.Random(seed)
    by_label: dict[str, list[Example]] = {}
    for e in dataset.examples:
        by_label.setdefault(e.intent, []).append(e)
    train, val = [], []
    for label in dataset.labels:
        group = list(by_label.get(label, ()))
        rng.shuffle(group)
        n_val = int(len(group) * share) if len(group) >= 5 else 0
        val += group[:n_val]
        train += group[n_val:]
    return train, val


HELD_OUT_MIN = 5
"""A label with fewer examples is never held out (training keeps them all)."""


def folds(dataset: Dataset, k: int, seed: int, share: float = 0.1) -> list[tuple[list[Example], list[Example]]]:
    """``k`` (train, held-out) pairs in which every example of a label with at least
    :data:`HELD_OUT_MIN` is held out exactly once (each label's examples shuffled, then dealt
    to the folds in turn, each label starting where the last one stopped, so the folds differ in
    size by one at most). ``k`` = 1: :func:`split`, holding out ``share``."""
    if k <= 1:
        return [split(dataset, share, seed)]
    rng = random.Random(seed)
    by_label: dict[str, list[Example]] = {}
    for e in dataset.examples:
        by_label.setdefault(e.intent, []).append(e)
    held: list[list[Example]] = [[] for _ in range(k)]
    kept: list[Example] = []
    at = 0
    for label in dataset.labels:
        group = list(by_label.get(label, ()))
        rng.shuffle(group)
        if len(group) < HELD_OUT_MIN:
            kept += group
            continue
        for e in group:
            held[at % k].append(e)
            at += 1
    out = []
    for i in range(k):
        rest = [e for j in range(k) if j != i for e in held[j]]
        out.append((kept + rest, held[i]))
    return out


def data_hash(examples: Sequence[Example]) -> str:
    data = [[list(e.tokens), e.intent, list(e.tags)] for e in examples]
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()
