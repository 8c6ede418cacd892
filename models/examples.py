"""A bot file's example utterances, read list by list: annotations checked, an example repeated
within its list dropped with a warning, the same utterance under two intents refused.

Why refuse one and not the other: a repeat within an intent has one clear reading (the tenant
pasted it twice), while an utterance under two intents asks the model to answer it both ways
and only the tenant knows which is right. Examples are the same when their text without
annotations is, ignoring case and runs of spaces.
"""

from __future__ import annotations

from typing import Any

from botyard.models.errors import Problems
from botyard.models.text import ANNOTATION_RE, parse_annotated, unannotated


class Examples:
    """Reads each list of examples of one bot file, remembering every example already read."""

    def __init__(self, declared: set[str], p: Problems) -> None:
        self.declared = declared
        """Entity names an annotation may use (every name under ``entities``, good or bad)."""
        self.p = p
        self.seen: dict[str, tuple[str, str]] = {}
        """Normal text -> ``(label, field)`` of the example that first said it."""

    def read(self, raw: Any, where: str, label: str, *, annotated: bool = True) -> list[str]:
        """The usable examples of the list at ``where`` (``intents.greet.examples``) of ``label``;
        ``annotated=False``: entity annotations are refused (out-of-scope examples)."""
        kept = []
        for i, example in strings(raw, where, self.p):
            at = f"{where}[{i}]"
            if not annotated and ANNOTATION_RE.search(example):
                self.p.add(at, "out-of-scope examples carry no entity annotations")
                continue
            if annotated and not self._annotations_ok(example, at):
                continue
            first = self.seen.setdefault(normal(example), (label, at))
            if first[1] == at:
                kept.append(example)
            elif first[0] == label:
                self.p.warn(at, f"duplicate example {example!r} (as {first[1]}): dropped")
            else:
                self.p.add(at, f"{example!r} is also an example of intent '{first[0]}' ({first[1]}): an utterance has one intent")
        return kept

    def _annotations_ok(self, example: str, at: str) -> bool:
        ok = True
        for m in ANNOTATION_RE.finditer(example):
            if m.group(2) not in self.declared:
                self.p.add(at, f"entity '{m.group(2)}' is used but not defined under 'entities'")
                ok = False
        rest = unannotated(example)
        if "](" in rest or "[" in rest and "]" in rest:
            self.p.add(at, r"malformed entity annotation; write [text](entity_name), and \[ \] for literal brackets")
            ok = False
        return ok


def strings(raw: Any, field: str, p: Problems) -> list[tuple[int, str]]:
    """``(index, stripped text)`` of each good item of a list of strings; each bad one is a problem."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        p.add(field, "must be a list of strings")
        return []
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not item.strip():
            p.add(f"{field}[{i}]", f"must be a non-empty string, got {item!r}")
        else:
            out.append((i, item.strip()))
    return out


def plain(example: str) -> str:
    """The utterance an example stands for: annotations and escapes gone."""
    return parse_annotated(example)[0]


def normal(example: str) -> str:
    """What two examples must share to be the same: their plain text, lower-cased, spaces collapsed."""
    return " ".join(plain(example).lower().split())
