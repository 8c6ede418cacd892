"""Text to sparse features: word 1-2-grams and character n-grams, pure Python.

Training and serving share this module, so both see exactly the same features; it
imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

TOKEN_RE = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    word_ngrams: int = 2
    """Longest word n-gram (1 = unigrams only)."""
    char_min: int = 3
    """Shortest character n-gram, taken inside each word padded with '<' and '>'."""
    char_max: int = 5
    """Longest character n-gram."""
    max_features: int = 50_000
    """Vocabulary cap: the most frequent features are kept."""

    def to_dict(self) -> dict:
        return asdict(self)


def tokenize(text: str) -> list[str]:
    return TOKEN_RE.findall(text.lower())


def token_features(token: str, config: FeatureConfig) -> list[str]:
    """The features one token gives on its own: the word and its character n-grams."""
    padded = f"<{token}>"
    feats = [f"w:{token}"]
    for n in range(config.char_min, config.char_max + 1):
        feats.extend("c:" + padded[i : i + n] for i in range(len(padded) - n + 1))
    return feats


def ngram_features(tokens: list[str], config: FeatureConfig) -> list[str]:
    """The features that span several tokens: word n-grams, n >= 2."""
    feats: list[str] = []
    for n in range(2, config.word_ngrams + 1):
        feats.extend("w:" + " ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return feats


def extract(text: str, config: FeatureConfig) -> list[str]:
    """All features of one text, repeats included."""
    tokens = tokenize(text)
    feats = ngram_features(tokens, config)
    for token in tokens:
        feats.extend(token_features(token, config))
    return feats


class Featurizer:
    """Maps texts to L2-normalised count vectors over a fixed vocabulary."""

    TOKEN_CACHE = 4096
    """Tokens whose known-feature indices are remembered (words repeat a lot in chat)."""

    def __init__(self, vocabulary: Sequence[str], config: FeatureConfig) -> None:
        self.vocabulary = list(vocabulary)
        self.config = config
        self._index = {feat: i for i, feat in enumerate(self.vocabulary)}
        self._token_cache: dict[str, tuple[int, ...]] = {}

    @classmethod
    def fit(cls, texts: Iterable[str], config: FeatureConfig = FeatureConfig()) -> "Featurizer":
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(set(extract(text, config)))
        # Sort by (-count, feature) so the vocabulary is the same on every run.
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: config.max_features]
        return cls(sorted(feat for feat, _ in ranked), config)

    @property
    def size(self) -> int:
        return len(self.vocabulary)

    def sparse(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Indices and L2-normalised weights of the known features of ``text``."""
        index, cache, config = self._index, self._token_cache, self.config
        counts: dict[int, int] = {}
        tokens = tokenize(text)
        for feat in ngram_features(tokens, config):
            i = index.get(feat)
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        for token in tokens:
            known = cache.get(token)
            if known is None:
                known = tuple(i for f in token_features(token, config) if (i := index.get(f)) is not None)
                if len(cache) >= self.TOKEN_CACHE:
                    cache.clear()
                cache[token] = known
            for i in known:
                counts[i] = counts.get(i, 0) + 1
        if not counts:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        idx = np.fromiter(counts.keys(), np.int64, len(counts))
        val = np.fromiter(counts.values(), np.float32, len(counts))
        val /= np.float32(math.sqrt(float(np.dot(val, val))))
        return idx, val

    def dense(self, texts: Sequence[str]) -> np.ndarray:
        """A dense ``[len(texts), size]`` float32 matrix (for training)."""
        out = np.zeros((len(texts), self.size), np.float32)
        for row, text in enumerate(texts):
            idx, val = self.sparse(text)
            out[row, idx] = val
        return out

    @classmethod
    def from_manifest(cls, vocabulary: Sequence[str], config: Mapping) -> "Featurizer":
        return cls(vocabulary, FeatureConfig(**config))
