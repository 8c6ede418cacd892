"""Tokens to hashed sparse features, shared by training and serving (no TensorFlow).

Every feature is a string (``w:order``, ``b:my order``, ``c:<ord``, ``s:Xx``) named
by its CRC-32. A snapshot's vocabulary is the sorted array of the hashes it kept, so a
loaded snapshot holds numbers, not a dictionary of strings; a process-wide cache maps
a token to its hashes once for all snapshots.

Two views of one utterance:

* the **sentence bag**: word 1..n-grams and the character n-grams of each word (with morphemes,
  also how the utterance ends: ``e:어요/EF``),
  weighted by sublinear TF x IDF and L2-normalised per family (what TF-IDF baselines use);
* the **token bags**: per token its word, shape and character n-grams, in fixed shares
  (``word_share``, ``shape_share``, the rest spread over the n-grams).

A Korean bot's tokens add their morphemes (``FeatureConfig.morphemes``, :mod:`botyard.models.korean`):
``시간이`` is also ``m:시간`` and ``m:이/JKS``, in the sentence bag beside the words and in a
token's bag with ``morph_share``; a token is a known word when its word or one of its content
morphemes is in the vocabulary.

:meth:`Featurizer.analyze` computes both with one vocabulary lookup.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache
from itertools import repeat
from typing import Iterable, Mapping, Sequence

import numpy as np

from botyard.models import korean


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    word_ngrams: int = 2
    """Longest word n-gram in the sentence bag (1 = unigrams only)."""
    char_min: int = 2
    """Shortest character n-gram, taken inside each word padded with '<' and '>'."""
    char_max: int = 5
    """Longest character n-gram."""
    min_count: int = 2
    """Character n-grams seen in fewer training utterances are dropped (words are kept)."""
    max_features: int = 200_000
    """Vocabulary cap: the features in most utterances are kept."""
    word_share: float = 0.25
    """Share of a token's vector that is its word's embedding (in the token bags)."""
    shape_share: float = 0.25
    """Share that is its shape's (``Xx``, ``d-d``); the rest is the mean of its character n-grams."""
    morphemes: str = ""
    """The morphological analyzer whose morphemes join each token's features (``kiwi``: Korean,
    :mod:`botyard.models.korean`; empty: none)."""
    morph_share: float = 0.25
    """With ``morphemes``: the share of a token's vector that is the mean of its morphemes."""
    ending: int = 2
    """With ``morphemes``: the utterance's last 1 .. ``ending`` morphemes are features of it
    (``e:어요/EF``, ``e:하/XSV 어요/EF``, ...)."""
    length: bool = False
    """With ``morphemes``: the utterance's number of tokens (1 .. 8, 8 for more) is a feature
    (``n:3``); a one-word fragment and a sentence end alike."""

    def to_dict(self) -> dict:
        out = asdict(self)
        if not self.morphemes:  # a model without morphemes keeps the manifest it always had
            del out["morphemes"], out["morph_share"], out["ending"], out["length"]
        return out

    @property
    def shares(self) -> np.ndarray:
        """A token bag's share of each feature family (:data:`WORD`, :data:`CHAR`, :data:`SHAPE`,
        :data:`MORPH`, :data:`GRAMMAR`); characters and morphemes spread theirs over the token's."""
        morph = self.morph_share if self.morphemes else 0.0
        chars = 1.0 - self.word_share - self.shape_share - morph
        return np.array([self.word_share, chars, self.shape_share, morph, morph], np.float32)


def _hash(feature: str) -> int:
    return zlib.crc32(feature.encode("utf-8"))


def shape(token: str) -> str:
    """``Xxxx`` -> ``Xx``, ``A-12`` -> ``X-d``: the token's character classes, squeezed."""
    out = []
    for ch in token[:12]:
        c = "X" if ch.isupper() else "x" if ch.isalpha() else "d" if ch.isdigit() else ch
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


WORD, CHAR, SHAPE, MORPH, GRAMMAR = 0, 1, 2, 3, 4
"""Feature families; the sentence bag normalises characters apart from the rest (words, word
n-grams, morphemes). ``MORPH``: a content morpheme (it makes its token a known word);
``GRAMMAR``: a particle, ending or affix."""


@lru_cache(maxsize=1 << 16)
def _word_hashes(word: str, char_min: int, char_max: int) -> tuple[int, ...]:
    """The word feature (first) and character n-grams of one lower-cased word."""
    padded = f"<{word}>"
    feats = [f"w:{word}"]
    for n in range(char_min, char_max + 1):
        feats.extend("c:" + padded[i : i + n] for i in range(len(padded) - n + 1))
    return tuple(_hash(f) for f in feats)


@lru_cache(maxsize=1 << 14)
def _shape_hash(token: str) -> int:
    return _hash("s:" + shape(token))


@lru_cache(maxsize=1 << 16)
def _token_entry(token: str, char_min: int, char_max: int, morphemes: str = "") -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A token's hashes (word, char n-grams, morphemes, shape; the word first, the shape last)
    and their families, cached process-wide."""
    word = _word_hashes(token.lower(), char_min, char_max)
    if not morphemes:
        return (*word, _shape_hash(token)), (WORD, *repeat(CHAR, len(word) - 1), SHAPE)
    content, grammar = korean.features(token)
    return (
        (*word, *(_hash("m:" + m) for m in content + grammar), _shape_hash(token)),
        (WORD, *repeat(CHAR, len(word) - 1), *repeat(MORPH, len(content)), *repeat(GRAMMAR, len(grammar)), SHAPE),
    )


@lru_cache(maxsize=1 << 16)
def _bigram_hash(first: str, second: str) -> int:
    return _hash(f"b:{first} {second}")


def ngram_hashes(lower: Sequence[str], longest: int) -> list[int]:
    """Hashes of the word 2..``longest``-grams of lower-cased tokens."""
    if longest == 2:
        return [_bigram_hash(a, b) for a, b in zip(lower, lower[1:])]
    hashes = []
    for n in range(2, longest + 1):
        hashes.extend(_hash("b:" + " ".join(lower[i : i + n])) for i in range(len(lower) - n + 1))
    return hashes


def ngram_hashes_of_pairs(pairs: Iterable[tuple[str, str]]) -> list[int]:
    """Hashes of word bigrams given as pairs of lower-cased tokens."""
    return [_bigram_hash(a, b) for a, b in pairs]


LONGEST = 8
"""With :attr:`FeatureConfig.length`: utterances of this many tokens or more share a feature."""


def ending_hashes(lower: Sequence[str], cfg: FeatureConfig) -> list[int]:
    """With morphemes, the features of the whole utterance, from its lower-cased tokens: how it
    ends (:func:`botyard.models.korean.ending`: ``e:어요/EF``, ``e:하/XSV 어요/EF``) and, with
    ``length``, its number of tokens (``n:3``)."""
    hashes = [_hash("e:" + end) for end in korean.ending(lower, cfg.ending)]
    if cfg.length:
        hashes.append(_hash(f"n:{min(len(lower), LONGEST)}"))
    return hashes


def _hashes(tokens: Sequence[str], cfg: FeatureConfig) -> tuple[list[int], list[int], list[int]]:
    """Every feature hash of an utterance with its family and owning token (-1: a word n-gram,
    or with morphemes the utterance's ending)."""
    lower = [t.lower() for t in tokens]
    hashes = ngram_hashes(lower, cfg.word_ngrams)
    if cfg.morphemes:
        hashes += ending_hashes(lower, cfg)
    parts = [WORD] * len(hashes)
    owner = [-1] * len(hashes)
    for j, token in enumerate(tokens):
        token_hashes, token_parts = _token_entry(token, cfg.char_min, cfg.char_max, cfg.morphemes)
        hashes.extend(token_hashes)
        parts.extend(token_parts)
        owner.extend(repeat(j, len(token_hashes)))
    return hashes, parts, owner


class Featurizer:
    """Hashes tokens into vocabulary rows (row 0 is padding; feature ``i`` is row ``i+1``)."""

    def __init__(
        self, vocabulary: np.ndarray, idf: np.ndarray, families: np.ndarray, config: FeatureConfig,
        vectors=None, center: np.ndarray | None = None,
    ) -> None:
        self.vectors = vectors
        """Shared :class:`~botyard.models.vectors.WordVectors` (None: the model uses none)."""
        self.context = None
        """Shared :class:`~botyard.models.encoder.SentenceEncoder`: the utterance's and each
        token's vectors are contextual encodings instead of means of piece rows (None: the means)."""
        self.center = None if center is None else np.asarray(center, np.float32)
        """The table's mean row, as stored in the snapshot."""
        self.vocabulary = np.asarray(vocabulary, np.uint32)
        self.idf = np.asarray(idf, np.float32)
        self.families = np.asarray(families, np.uint8)
        self.config = config
        if not len(self.vocabulary) == len(self.idf) == len(self.families):
            raise ValueError("vocabulary, idf and families differ in length")

    # ---------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, utterances: Iterable[Sequence[str]], config: FeatureConfig = FeatureConfig()) -> "Featurizer":
        """Keep the features of the training utterances (tokens), ranked by document frequency."""
        df: Counter[int] = Counter()
        family: dict[int, int] = {}
        n_docs = 0
        for tokens in utterances:
            n_docs += 1
            hashes, parts, _ = _hashes(tokens, config)
            family.update(zip(hashes, parts))
            df.update(set(hashes))
        kept = [(h, c) for h, c in df.items() if c >= config.min_count or family.get(h, WORD) != CHAR]
        kept.sort(key=lambda hc: (-hc[1], hc[0]))
        kept = sorted(kept[: config.max_features])
        vocab = np.array([h for h, _ in kept], np.uint32)
        counts = np.array([c for _, c in kept], np.float64)
        idf = (np.log((1.0 + n_docs) / (1.0 + counts)) + 1.0).astype(np.float32)
        families = np.array([family.get(h, WORD) for h, _ in kept], np.uint8)
        return cls(vocab, idf, families, config)

    @property
    def size(self) -> int:
        """Rows of an embedding table over this vocabulary, padding row included."""
        return len(self.vocabulary) + 1

    def lookup(self, hashes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, known)``: vocabulary rows (>= 1) of the known hashes, and which hashes are known."""
        rows = self.rows(hashes)
        known = rows > 0
        return rows[known], known

    def rows(self, hashes: Sequence[int]) -> np.ndarray:
        """The vocabulary row of each hash, 0 where it is not in the vocabulary."""
        if not len(self.vocabulary) or not len(hashes):
            return np.zeros(len(hashes), np.int64)
        h = np.fromiter(hashes, np.uint32, len(hashes))
        pos = np.searchsorted(self.vocabulary, h)
        np.minimum(pos, len(self.vocabulary) - 1, out=pos)
        return np.where(self.vocabulary[pos] == h, pos + 1, 0)

    # ---------------------------------------------------------------- views
    def sentence_rows(self, tokens: Sequence[str]) -> tuple[np.ndarray, bool]:
        """The tokens' parts of the sentence bag, all in one array (the first items of
        :meth:`token_rows` together, without the token bags a model with no token
        convolutions does not read), and whether any token is itself a known word (the
        fourth item of :meth:`token_rows`)."""
        if not tokens:
            return np.zeros(0, np.int64), False
        cfg = self.config
        entries = [_token_entry(t, cfg.char_min, cfg.char_max, cfg.morphemes) for t in tokens]
        rows = self.rows([h for hashes, _ in entries for h in hashes])
        lengths = np.array([len(h) for h, _ in entries])
        ends = np.cumsum(lengths)
        keep = rows > 0
        knows_a_word = bool(keep[ends - lengths].any())  # a token's first hash is its word
        if cfg.morphemes and not knows_a_word:  # ... or one of its content morphemes
            knows_a_word = bool(keep[np.fromiter((f == MORPH for _, fams in entries for f in fams), bool, len(rows))].any())
        keep[ends - 1] = False  # its last, its shape: not in the sentence bag
        return rows[keep], knows_a_word

    def token_rows(self, tokens: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """What each token adds to :meth:`analyze`'s two views, on its own (serving caches it per
        token): ``(sentence_rows, bag_rows, bag_weights, known_word)``, the known rows of its
        word and character n-grams (its part of the sentence bag, before counting and
        weighting), its token bag (word, n-gram and shape rows with the shares :meth:`analyze`
        gives them), and whether the word itself is in the vocabulary (an utterance of no
        known word, ``blorp zzz``, gets the fallback however confident the network is)."""
        cfg = self.config
        entries = [_token_entry(t, cfg.char_min, cfg.char_max, cfg.morphemes) for t in tokens]
        rows = self.rows([h for hashes, _ in entries for h in hashes])
        share = cfg.shares
        out, start = [], 0
        for hashes, families in entries:
            r = rows[start : start + len(hashes)]
            start += len(hashes)
            known = r > 0
            family = np.asarray(families)
            weights = share[family]
            for spread in (family == CHAR, family >= MORPH):
                weights[spread] /= np.float32(max(int(known[spread].sum()), 1))
            known_word = bool(known[0]) or bool(known[family == MORPH].any())
            out.append((r[:-1][known[:-1]], r[known], weights[known], known_word))
        return out

    def analyze(
        self, tokens: Sequence[str], token_bags: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Both bags with one vocabulary lookup: ``(sent_rows, sent_w, tok_rows, tok_w, tok_owner)``.

        Sentence bag: sublinear TF x IDF, L2-normalised per family (words and word
        n-grams; character n-grams), like a union of two TF-IDF vectorizers.

        Token bags: a token's vector mixes its word, its shape (``Xx``, ``d-d``) and the
        mean of its character n-grams in fixed shares, so capitalisation and digits are
        not drowned by a dozen n-grams. The word and character features are the
        sentence's own, so they are hashed and looked up once. ``token_bags=False`` (a model
        without a tag head or pool) leaves them empty.
        """
        cfg = self.config
        hashes, parts, owner = _hashes(tokens, cfg)
        rows, known = self.lookup(hashes)
        part = np.asarray(parts, np.int64)[known]
        who = np.asarray(owner, np.int64)[known]

        in_sentence = part != SHAPE
        uniq, counts = np.unique(rows[in_sentence], return_counts=True)
        sent_w = (1.0 + np.log(counts.astype(np.float32))) * self.idf[uniq - 1]
        chars = self.families[uniq - 1] == CHAR
        for family in (chars, ~chars):
            norm = float(np.dot(sent_w[family], sent_w[family]))
            if norm > 0.0:
                sent_w[family] /= np.float32(math.sqrt(norm))

        if not token_bags:
            none = np.zeros(0, np.int64)
            return uniq, sent_w.astype(np.float32), none, np.zeros(0, np.float32), none
        in_tokens = who >= 0
        t_rows, t_part, t_who = rows[in_tokens], part[in_tokens], who[in_tokens]
        return uniq, sent_w.astype(np.float32), t_rows, token_weights(cfg, t_part, t_who, len(tokens)), t_who

    # ---------------------------------------------------------------- batches (training)
    def encode(self, tokens: Sequence[str], context: tuple[np.ndarray, np.ndarray] | None = None) -> tuple:
        """One utterance's sentence bag and token bags (and word vectors), ready for :func:`collate`.
        ``context``: its vectors from :attr:`context` (``encode``'s pair), if already computed."""
        s_rows, s_w, t_rows, t_w, owner = self.analyze(tokens)
        if self.vectors is None:
            return (s_rows, s_w), (t_rows, t_w, owner, len(tokens))
        if self.context is None:
            sentence, per_token = self.vectors.encode(tokens, self.center)
        else:
            if context is None:
                context = self.context.encode(tokens)
            scale = np.float32(self.vectors.scale)
            sentence, per_token = context[0] * scale, context[1] * scale
        return (s_rows, s_w), (t_rows, t_w, owner, len(tokens)), (sentence, per_token)

    def contexts(self, utterances: Sequence[Sequence[str]], progress=None) -> list:
        """Each utterance's contextual vectors, batched (None each without :attr:`context`)."""
        if self.context is None:
            return [None] * len(utterances)
        return self.context.encode_many(utterances, progress=progress)

    def batch(self, utterances: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
        """Padded arrays for a batch of tokenised utterances (the Keras model's inputs)."""
        return collate([self.encode(t, c) for t, c in zip(utterances, self.contexts(utterances))])

    @classmethod
    def from_arrays(
        cls, vocabulary: np.ndarray, idf: np.ndarray, families: np.ndarray, config: Mapping, vectors=None, center=None
    ) -> "Featurizer":
        return cls(vocabulary, idf, families, FeatureConfig(**config), vectors, center)


def token_weights(cfg: FeatureConfig, part: np.ndarray, owner: np.ndarray, n_tokens: int) -> np.ndarray:
    """Each known token feature's weight in its token's bag (``part``: its family, ``owner``: its
    token): the family's share (:attr:`FeatureConfig.shares`), character n-grams' and morphemes'
    spread evenly over the token's known ones."""
    t_w = cfg.shares[part]
    spreads = (part == CHAR, part >= MORPH) if cfg.morphemes else (part == CHAR,)
    for spread in spreads:
        n = np.bincount(owner[spread], minlength=n_tokens).astype(np.float32)
        t_w[spread] /= np.maximum(n[owner[spread]], 1.0)
    return t_w


def collate(encoded: Sequence[tuple]) -> dict[str, np.ndarray]:
    """Flatten a batch of :meth:`Featurizer.encode` results into the Keras model's inputs.

    ``sent_*``: every sentence feature with its utterance (segment); ``tok_*``: every
    token feature with its ``utterance * max_tokens + token`` slot; ``tok_mask``: real tokens;
    with word vectors, ``vec`` ([batch, dim]) and ``tok_vec`` ([batch, tokens, dim]).
    """
    t_len = max([n for _, (*_, n), *_ in encoded] + [1])
    s_ids, s_w, s_seg, t_ids, t_w, t_seg = [], [], [], [], [], []
    tok_mask = np.zeros((len(encoded), t_len), np.float32)
    for i, ((r, w), (tr, tw, owner, n), *_) in enumerate(encoded):
        s_ids.append(r)
        s_w.append(w)
        s_seg.append(np.full(len(r), i, np.int32))
        tok_mask[i, :n] = 1.0
        t_ids.append(tr)
        t_w.append(tw)
        t_seg.append(i * t_len + owner)

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)

    out = {
        "sent_ids": cat(s_ids, np.int32), "sent_w": cat(s_w, np.float32), "sent_seg": cat(s_seg, np.int32),
        "tok_ids": cat(t_ids, np.int32), "tok_w": cat(t_w, np.float32), "tok_seg": cat(t_seg, np.int32),
        "tok_mask": tok_mask,
    }
    if encoded and len(encoded[0]) > 2:
        dim = encoded[0][2][0].shape[0]
        out["vec"] = np.stack([e[2][0] for e in encoded]).astype(np.float32, copy=False)
        tok_vec = np.zeros((len(encoded), t_len, dim), np.float32)
        for i, e in enumerate(encoded):
            tok_vec[i, : len(e[2][1])] = e[2][1]
        out["tok_vec"] = tok_vec
    return out
