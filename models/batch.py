"""Many utterances through one snapshot at once: what replay and what-if use.

:meth:`Predictor.predict` pays Python and numpy call overhead per utterance (about 25
small numpy calls); here every step runs once for the whole batch: one vocabulary
lookup, segment sums with ``reduceat``, one matmul per convolution over all tokens (the
terms of window slots that would cross into a neighbouring utterance are left out, which is
exactly the per-utterance "same" padding), one softmax. Segment sums are sparse-by-dense products
(``scipy.sparse``), so no utterance's feature rows are copied. The results equal :meth:`Predictor.predict`'s
up to float rounding (summation order); callers that must match the serving path
exactly re-check the few utterances they care about with it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.sparse import csr_matrix

from botyard.models.featurizer import CHAR, MORPH, SHAPE, WORD, _hashes, token_weights
from botyard.models.numerics import relu, softmax, softmax_shifted
from botyard.models.prediction import Prediction
from botyard.models.runtime import Predictor
from botyard.models.text import TOKEN_RE, tokenize
from botyard.models.tuned import TunedModel


def _weighted_rows(table: np.ndarray, rows: np.ndarray, weights: np.ndarray, segments: np.ndarray, n: int) -> np.ndarray:
    """``out[s] = sum(weights[i] * table[rows[i]] for i in segment s)``, ``segments`` sorted ascending:
    one sparse (n x rows) by dense product, with no gathered copy of the rows."""
    sizes = np.bincount(segments, minlength=n)
    indptr = np.concatenate([[0], np.cumsum(sizes)])
    mix = csr_matrix((weights.astype(np.float32, copy=False), rows, indptr), shape=(n, table.shape[0]))
    return np.asarray(mix @ table, dtype=np.float32)


def predict_batch(p: Predictor, texts: Sequence[str], *, answer: Predictor | None = None,
                  scores: Sequence[float | None] | None = None) -> list[Prediction]:
    """:meth:`Predictor.predict` for every text (a cascade's second model for those its gate sends
    on). ``answer``: the predictor whose threshold, matchers and decoder make the answers (``p``);
    ``scores``: the texts' in-scope scores, when another model (a cascade's first) computed them."""
    answer = answer or p
    n = len(texts)
    if n == 0:
        return []
    f = p.featurizer
    cfg = f.config
    # Character spans are only needed to cut learned entities out of the text.
    tokens = [tokenize(t) for t in texts] if p.has_tags else None
    words = [[t.text for t in toks] for toks in tokens] if tokens is not None else [TOKEN_RE.findall(t) for t in texts]
    lengths = np.array([len(w) for w in words], np.int64)
    tok_base = np.concatenate([[0], np.cumsum(lengths)])
    hashes: list[int] = []
    parts: list[int] = []
    owner: list[int] = []
    per_utt = np.zeros(n, np.int64)
    for i, utterance in enumerate(words):
        h, pa, ow = _hashes(utterance, cfg)
        hashes.extend(h)
        parts.extend(pa)
        owner.extend(ow)
        per_utt[i] = len(h)
    utt_all = np.repeat(np.arange(n), per_utt)
    owner_all = np.asarray(owner, np.int64)
    owner_all = np.where(owner_all >= 0, owner_all + tok_base[:-1][utt_all], -1)
    rows, known = f.lookup(hashes)
    part = np.asarray(parts, np.int64)[known]
    who = owner_all[known]
    seg = utt_all[known]
    knows_a_word = np.zeros(n, bool)  # a token's own word or content morpheme (not only its n-grams) is known
    knows_a_word[seg[((part == WORD) | (part == MORPH)) & (who >= 0)]] = True

    # Sentence bags: sublinear TF x IDF per (utterance, feature), L2-normalised per family.
    in_sentence = part != SHAPE
    size = np.int64(f.size)
    keys, counts = np.unique(seg[in_sentence] * size + rows[in_sentence], return_counts=True)
    s_seg, s_rows = keys // size, keys % size
    s_w = (1.0 + np.log(counts.astype(np.float32))) * f.idf[s_rows - 1]
    family = (f.families[s_rows - 1] == CHAR).astype(np.int64)
    group = s_seg * 2 + family
    norms = np.sqrt(np.bincount(group, weights=s_w.astype(np.float64) ** 2, minlength=2 * n)).astype(np.float32)
    s_w = (s_w / np.where(norms[group] > 0, norms[group], 1.0)).astype(np.float32)
    bag = _weighted_rows(p.embed, s_rows, s_w, s_seg, n)
    if p.vdim:  # [bag, vec] @ W == bag @ W[:embed] + vec @ W[embed:]
        if f.context is None:
            encoded = [f.vectors.encode(w, f.center) for w in words]
        else:  # the utterances read in context, all in one batched pass
            scale = np.float32(f.vectors.scale)
            encoded = [(c[0] * scale, c[1] * scale) for c in f.contexts(words)]
        width = p.embed.shape[1]
        vec = np.stack([e[0] for e in encoded])
        raw = vec
        if p.w_vec is not None:
            vec = vec @ p.w_vec
        sentence = relu(bag @ p.w_sent[:width] + vec @ p.w_sent[width:] + p.b_sent)
    else:
        sentence = relu(bag @ p.w_sent + p.b_sent)

    x = None
    total = int(tok_base[-1])
    if (p.has_tags or p.pool) and total:
        in_tokens = who >= 0
        t_rows, t_part, t_who = rows[in_tokens], part[in_tokens], who[in_tokens]
        t_w = token_weights(cfg, t_part, t_who, total)
        order = np.argsort(t_who, kind="stable")
        x = _weighted_rows(p.embed, t_rows[order], t_w[order], t_who[order], total)
        if p.vdim:
            tok_vec = np.concatenate([e[1] for e in encoded])
            x = np.concatenate([x, tok_vec if p.w_vec is None else tok_vec @ p.w_vec], axis=1)
        token_utt = np.repeat(np.arange(n), lengths)
        for flat, bias, width in p.conv:
            x = relu(_conv_segments(x, token_utt, flat, bias, width))

    if p.pool:
        pooled = np.zeros((n, len(p.conv[-1][1])), np.float32)
        if x is not None:
            nonempty = lengths > 0
            pooled[nonempty] = np.maximum.reduceat(x, tok_base[:-1][nonempty], axis=0)
        width = sentence.shape[1]
        logits = sentence @ p.w_int[:width] + pooled @ p.w_int[width:][: pooled.shape[1]] + p.b_int
    else:
        logits = sentence @ p.w_int[: sentence.shape[1]] + p.b_int
    if p.skip:
        logits += raw @ p.w_int[-raw.shape[1] :]
    intent = softmax(logits)
    best = intent.argmax(axis=1)
    confidence = intent[np.arange(n), best]
    if scores is None:
        scores = p.scope.scores(sentence, best, confidence).tolist() if p.scope is not None else [None] * n

    tag_probs = None
    if p.has_tags and x is not None:
        split = x.shape[1]
        token_utt = np.repeat(np.arange(n), lengths)
        tag_logits = x @ p.w_tag[:split] + (sentence @ p.w_tag[split:] + p.b_tag)[token_utt]
        tag_probs, tag_shifted = softmax_shifted(tag_logits)
        tag_best = tag_probs.argmax(axis=1)
        o_tag = p.tags.index("O") if "O" in p.tags else -1

    out: list[Prediction] = []
    for i, text in enumerate(texts):
        lo, hi = int(tok_base[i]), int(tok_base[i + 1])
        # A span needs a tag other than O somewhere; without one the tag path is all O (unless a
        # tag prior prefers another path).
        decode = tag_probs is not None and hi > lo and (p.decoder.prior or (tag_best[lo:hi] != o_tag).any())
        tags, shifted = (tag_probs[lo:hi], tag_shifted[lo:hi]) if decode else (None, None)
        out.append(
            answer.prediction(
                text, tokens[i] if decode else (), p.labels[int(best[i])], float(confidence[i]), tags, shifted,
                knows_a_word=bool(knows_a_word[i]), score=scores[i],
            )
        )
    if p.fallback is not None:  # the utterances the bag model is unsure of: the second model's answers
        sent = [i for i in range(n) if confidence[i] < p.gate]
        if isinstance(p.fallback, TunedModel):  # computed over the cores, then blended one by one
            p.fallback.prime([words[i] for i in sent])
            for i in sent:
                out[i] = p.predict(texts[i])
            return out
        second = predict_batch(p.fallback, [texts[i] for i in sent], answer=answer, scores=[scores[i] for i in sent])
        for i, prediction in zip(sent, second if sent else ()):
            out[i] = prediction
    return out


def _conv_segments(x: np.ndarray, token_utt: np.ndarray, flat: np.ndarray, bias: np.ndarray, width: int) -> np.ndarray:
    """``Conv1D(padding="same")`` of every utterance at once over their concatenated tokens:
    each token's product with every slot of the kernel (``flat``: ``[input, width * filters]``),
    summed over the window, leaving out slots that would cross into a neighbouring utterance."""
    total, filters, pad = x.shape[0], len(bias), width // 2
    z = x @ flat
    out = np.zeros((total, filters), np.float32)
    for k in range(width):
        off = k - pad
        lo, hi = max(0, -off), min(total, total - off)
        if hi <= lo:
            continue
        same = token_utt[lo:hi] == token_utt[lo + off : hi + off]
        out[lo:hi] += z[lo + off : hi + off, k * filters : (k + 1) * filters] * same[:, None]
    return out + bias
