"""Korean words as morphemes, for the bag model and the entity matchers (numpy-free, no TensorFlow).

Korean attaches particles and endings to the words they follow (시간 / 시간이 / 시간은;
부츠 / 부츠를), and writers space freely (상담원 연결 시간이 / 상담원연결시간이), so a Korean
bot cannot learn from whole space-separated words alone. Each token (an eojeol, as
:func:`botyard.models.text.tokenize` cuts it) is analysed into morphemes by Kiwi
(``kiwipiepy``: a wheel with its model, no system library; why Kiwi, and what else was
measured: ``docs/korean.md``): ``상담원연결시간이`` -> 상담원/NNG 연결/NNG 시간/NNG 이/JKS.

- **Lazily**: the analyzer (about 2 s and 300 MB) loads the first time a Korean bot needs it;
  a node serving only English bots never imports ``kiwipiepy``.
- **Per token, cached**: a token is analysed on its own (the same answer whatever its
  neighbours, so the runtime's per-token caches stay valid) and the result is kept for the
  process (:data:`CACHE` tokens), as the featurizer keeps a token's hashes.
- **Offsets** are characters of the token, so a stem's span is in the user's own characters.

Spoken endings are folded a little further than Kiwi does: ``해여``/``해용``/``할께요`` read
as ``해요``/``할게요`` (:func:`_spoken`).
"""

from __future__ import annotations

import importlib.metadata
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from botyard.models.errors import ModelError

ANALYZER = "kiwi"
"""What :attr:`botyard.models.featurizer.FeatureConfig.morphemes` names for this analyzer."""
PACKAGE = "kiwipiepy"
INSTALL_HINT = "pip install kiwipiepy (a wheel with its model; no system library)"
CACHE = 1 << 16
"""Tokens whose analysis a process keeps."""
CONTENT = ("NNG", "NNP", "NR", "NP", "VV", "VA", "MM", "MAG", "MAJ", "IC", "XR", "SL", "SH")
"""Tags of the morphemes that carry meaning (nouns, numerals, pronouns, verbs, adjectives,
determiners, adverbs, interjections, roots, foreign words, hanja); the rest (particles J*,
endings E*, affixes X*, the copula, bound nouns, auxiliaries, symbols) are grammar."""
PUNCTUATION = ("SF", "SP", "SS", "SSO", "SSC", "SE", "SO", "SW")
SKIPPED = ("Z_CODA", "Z_SIOT")
"""Kiwi's marks for a stray final consonant (``감사합니당``: ``ᆸ니다`` + ``ᆼ``): no feature."""


@dataclass(frozen=True, slots=True)
class Morpheme:
    form: str
    """Kiwi's form (it may differ from the text: ``했`` is ``하`` + ``었``)."""
    tag: str
    """Sejong tag (``NNG``, ``JKO``, ``EF``...), without Kiwi's regular/irregular suffix."""
    start: int
    end: int
    """Characters ``start:end`` of the token (contracted morphemes share theirs)."""

    @property
    def content(self) -> bool:
        return self.tag in CONTENT


_lock = threading.Lock()
_kiwi = None


def analyzer():
    """The process's Kiwi, loaded on first use (about 2 s); a :class:`ModelError` without it."""
    global _kiwi
    if _kiwi is None:
        with _lock:
            if _kiwi is None:
                try:
                    from kiwipiepy import Kiwi  # noqa: PLC0415 - only Korean bots pay for it
                except ImportError:
                    raise ModelError(f"Korean bots need the morphological analyzer {PACKAGE}; {INSTALL_HINT}") from None
                _kiwi = Kiwi(num_workers=-1)  # analyse in the calling thread
    return _kiwi


def reference() -> dict:
    """What a snapshot records about the analyzer it was trained with."""
    return {"name": PACKAGE, "version": _version()}


def require(reference: dict) -> None:
    """Loads the analyzer a snapshot needs, or a :class:`ModelError` saying why it cannot.
    Another version of it is accepted: analyses differ on rare words only."""
    if reference.get("name") != PACKAGE:
        raise ModelError(f"this snapshot reads Korean with {reference.get('name')!r}; this node has {PACKAGE}")
    analyzer()


def _version() -> str:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=CACHE)
def analyze(token: str) -> tuple[Morpheme, ...]:
    """A token's morphemes (one eojeol, or any text without spaces); punctuation included."""
    if not token:
        return ()
    kiwi = analyzer()
    return tuple(
        Morpheme(m.form, m.tag.split("-")[0], m.start, m.start + m.len)
        for m in kiwi.tokenize(token)
        if m.tag not in SKIPPED
    )


def _spoken(form: str, tag: str) -> str:
    """Spoken spellings of endings as the written ones: ``어여`` -> ``어요``, ``ᆯ께요`` -> ``ᆯ게요``."""
    if tag.startswith("E"):
        if form.endswith("여") and len(form) > 1:
            form = form[:-1] + "요"
        if form.startswith("ᆯ께"):
            form = "ᆯ게" + form[2:]
    return form


@lru_cache(maxsize=CACHE)
def features(token: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The token's morpheme features: ``(content, grammar)``. Content morphemes are named by
    their form alone (``시간``; ``언제`` is a pronoun in ``언제예요`` and an adverb in
    ``언제와요``, one feature); grammatical ones by form and tag (``이/JKS``, ``이/VCP``,
    ``어요/EF``: the tag is what tells them apart)."""
    content, grammar = [], []
    for m in analyze(token):
        if m.content:
            content.append(m.form.lower())
        else:
            grammar.append(f"{_spoken(m.form, m.tag)}/{m.tag}")
    return tuple(content), tuple(grammar)


def ending(tokens: Sequence[str], longest: int = 2) -> tuple[str, ...]:
    """How the utterance ends: its last morpheme that is not punctuation, with its tag (``어요/EF``,
    ``까/EF``, ``시간/NNG``), the last two (``하/XSV 어요/EF``), ... up to the last ``longest``. A
    Korean sentence says what it does at its end (a statement, a question, a request, a fragment);
    the bag model reads these as features of the whole utterance. Empty for an utterance of
    punctuation alone."""
    last: list[str] = []
    for token in reversed(tokens):
        for m in reversed(analyze(token)):
            if m.tag not in PUNCTUATION:
                last.insert(0, f"{_spoken(m.form, m.tag)}/{m.tag}")
                if len(last) == longest:
                    return tuple(" ".join(last[-k:]) for k in range(1, longest + 1))
    return tuple(" ".join(last[-k:]) for k in range(1, len(last) + 1))


def stem_end(token: str) -> int:
    """Where the particles and endings that close a token begin (``부츠를`` -> 2, ``서울로``
    -> 2, ``부츠`` -> 2): an entity tagged on the token ends there. The token's length when
    it closes on a meaningful morpheme, or when nothing would be left."""
    morphemes = analyze(token)
    end = len(token)
    for m in reversed(morphemes):
        if m.content or m.tag in ("SN", "NNB"):
            break
        end = min(end, m.start)
    return end if end > 0 else len(token)


@lru_cache(maxsize=CACHE)
def boundaries(token: str) -> frozenset[int]:
    """Offsets in a token where one morpheme ends and the next begins (its ends included)."""
    morphemes = analyze(token)
    cuts = {0, len(token)} | {m.start for m in morphemes} | {m.end for m in morphemes}
    return frozenset(c for c in cuts if not any(m.start < c < m.end for m in morphemes))


def at_cut(text: str, pos: int) -> bool:
    """Whether ``pos`` in ``text`` is between two morphemes: outside a word, at a word's edge, or
    inside a word (``부츠|를``, ``부츠|반품하고``) where Kiwi cuts it."""
    if pos <= 0 or pos >= len(text) or not (text[pos - 1].isalnum() or text[pos - 1] == "_") \
            or not (text[pos].isalnum() or text[pos] == "_"):
        return True
    start, end = pos, pos
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return pos - start in boundaries(text[start:end])


__all__ = ["ANALYZER", "Morpheme", "analyze", "analyzer", "at_cut", "boundaries", "ending", "features", "reference", "require", "stem_end"]
