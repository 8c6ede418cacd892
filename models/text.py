r"""Tokens with character spans, and the inline entity annotations of bot files.

``where is order [A-1234](order_id)`` is the text ``where is order A-1234`` with the
entity ``order_id`` at characters 15..21. Training turns annotations into one BIO tag
per token; serving turns tags back into spans of the original text.

``\[`` and ``\]`` are literal brackets, inside an annotation or outside one:
``what does \[beta\] mean on [model \[X\]](product)`` is the text ``what does [beta]
mean on model [X]`` with ``product`` at characters 25..34. A backslash before anything
else is itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TOKEN_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)
ANNOTATION_RE = re.compile(r"(?<!\\)\[((?:\\[\[\]]|[^\[\]])+?)(?<!\\)\]\(([A-Za-z][A-Za-z0-9_]{0,63})\)")
"""``[text](entity)``; the text may hold escaped brackets, and an escaped bracket opens or closes none."""
ESCAPED_RE = re.compile(r"\\([\[\]])")
"""``\\[`` or ``\\]``: a literal bracket."""


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Span:
    """An entity occurrence: characters ``start:end`` of the text."""

    entity: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    return [Token(m.group(), m.start(), m.end()) for m in TOKEN_RE.finditer(text)]


def unescape(text: str) -> str:
    """``\\[`` and ``\\]`` as the brackets they stand for."""
    return ESCAPED_RE.sub(r"\1", text)


def unannotated(example: str) -> str:
    """What is left of an example outside its annotations, escapes as written: a bracket in
    it that is not escaped is a malformed annotation."""
    return ESCAPED_RE.sub("", ANNOTATION_RE.sub("", example))


def parse_annotated(example: str) -> tuple[str, list[Span]]:
    """Strip ``[text](entity)`` annotations and unescape brackets; return the plain text and
    the spans (offsets into that text)."""
    spans, parts, pos, out_len = [], [], 0, 0
    for m in ANNOTATION_RE.finditer(example):
        before = unescape(example[pos : m.start()])
        parts.append(before)
        out_len += len(before)
        value = unescape(m.group(1))
        spans.append(Span(m.group(2), out_len, out_len + len(value)))
        parts.append(value)
        out_len += len(value)
        pos = m.end()
    parts.append(unescape(example[pos:]))
    return "".join(parts), spans


def bio_tags(tokens: list[Token], spans: list[Span]) -> list[str]:
    """One tag per token: ``B-entity`` / ``I-entity`` inside a span, else ``O``."""
    tags = ["O"] * len(tokens)
    for span in spans:
        first = True
        for i, tok in enumerate(tokens):
            if tok.start < span.end and tok.end > span.start:
                tags[i] = ("B-" if first else "I-") + span.entity
                first = False
    return tags


def tag_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """``(entity, first_token, last_token + 1)`` for each BIO chunk; a stray ``I-`` starts one."""
    chunks: list[tuple[str, int, int]] = []
    current: list | None = None
    for i, tag in enumerate(tags):
        if tag == "O":
            current = None
            continue
        prefix, _, entity = tag.partition("-")
        if prefix == "I" and current is not None and current[0] == entity:
            current[2] = i + 1
            continue
        current = [entity, i, i + 1]
        chunks.append(current)  # type: ignore[arg-type]
    return [tuple(c) for c in chunks]  # type: ignore[misc]
