"""The serving runtime: a frozen snapshot run with numpy alone (no TensorFlow).

It computes exactly what :mod:`botyard.training.network` computes in Keras (a test holds
the two within 1e-5): sums of a few embedding rows, three or four small matrix
products, and a softmax; tens of microseconds per utterance.

Whatever depends on one token alone is computed once per snapshot and token and cached
(bounded): the token's known feature rows, its word-vector row, and its product with the
first convolution's kernel (its token bag and word vector through every slot of the
kernel), so a convolution is a sum of shifted rows. Word bigrams' vocabulary rows are
cached the same way. An utterance of known words then costs the sentence bag, two or
three small products and the decoding.

A cascade snapshot (``botyard train --cascade``) holds a second, context-tier model
(arrays under ``cascade/``): it answers only the utterances the bag model is unsure of
(intent confidence below the cascade's ``gate``), so most turns cost what the bag model
costs. A tuned cascade's (``--tuned``) second model is a fine-tuned encoder
(:mod:`botyard.models.tuned`), and those utterances get the two models' answers blended.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from botyard.models import blas, korean
from botyard.models.decoding import TagDecoder
from botyard.models.definition import OUT_OF_SCOPE, BotDefinition
from botyard.models.encoder import require as require_encoder
from botyard.models.entities import Entity, Matchers
from botyard.models.errors import ModelError
from botyard.models.featurizer import CHAR, Featurizer, ending_hashes, ngram_hashes, ngram_hashes_of_pairs
from botyard.models.numerics import HALF_TO_FLOAT, blended, flat_conv, relu, shifted_sum, softmax, softmax_shifted
from botyard.models.prediction import Assessment, Prediction
from botyard.models.scope import Scope
from botyard.models.scope import arrays_of as has_scope
from botyard.models.text import tag_spans, tokenize
from botyard.models.tuned import KIND as TUNED_KIND
from botyard.models.tuned import TunedModel
from botyard.models.vectors import require as require_vectors

MODEL_KIND = "joint-bag-cnn"
CASCADE = "cascade/"
"""Prefix of a cascade's second model's arrays in a snapshot."""
DECIDED = 64
"""Outputs :meth:`Predictor.escalates` keeps for the answers that follow (a burst's worth)."""
CACHE_SHARE = 0.25
"""A loaded snapshot with token convolutions (a tag head, or ``pool``) caches per-token work
up to about this share of its own bytes (256 tokens at least): SNIPS's (44 MB) holds up to
5,840 tokens, about 12 MB with the bigram rows. The cap is counted in ``nbytes`` from the
start, so a byte-bounded model cache never holds more than it was given. An intent-only
model caches nothing: for a 20-intent bot (1.9 MB) the cache would halve the time per
utterance (100 -> 48 us) but add up to 0.5 MB, a quarter more per model, and a node holds
thousands of them."""


def cascade_parts(model: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> list[tuple[dict, dict]]:
    """(model manifest, arrays) of each model a snapshot holds: its one, or a cascade's two (the
    bag model's without ``cascade``; the context tier's arrays without their ``cascade/`` prefix)."""
    cascade = model.get("cascade")
    if not cascade:
        return [(dict(model), dict(arrays))]
    if not isinstance(cascade, Mapping) or not isinstance(cascade.get("model"), Mapping):
        raise ModelError("a cascade snapshot lacks its second model")
    first = {k: v for k, v in arrays.items() if not k.startswith(CASCADE)}
    second = {k[len(CASCADE):]: v for k, v in arrays.items() if k.startswith(CASCADE)}
    return [({k: v for k, v in model.items() if k != "cascade"}, first), (dict(cascade["model"]), second)]


class Predictor:
    """Intents and entities of utterances, with one snapshot's weights."""

    def __init__(self, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        blas.single_threaded()
        model = manifest.get("model", {})
        if model.get("kind") != MODEL_KIND:
            raise ModelError(f"unsupported model kind {model.get('kind')!r}; this runtime serves {MODEL_KIND!r}")
        self._decided: dict[tuple, tuple] = {}
        """The bag model's outputs for tokens :meth:`escalates` was asked about, until answered."""
        self.fallback: Predictor | TunedModel | None = None
        """The cascade's second model, a context tier or a fine-tuned encoder (None: this model
        answers every utterance)."""
        self.blend = 1.0
        """The weight of the second model's answer against this one's (``(1 - blend) * own + blend * second``)."""
        if model.get("cascade"):
            (_, arrays), (second, sub) = cascade_parts(model, arrays)
            tuned = second.get("kind") == TUNED_KIND
            self.fallback = TunedModel(second, sub) if tuned else Predictor({"model": second}, sub)
            self.gate = float(model["cascade"].get("gate", 0.0))
            self.blend = float(model["cascade"].get("blend", 1.0))
            if self.fallback.labels != list(model.get("labels", ())) or self.fallback.tags != list(model.get("tags", ())):
                raise ModelError("a cascade's two models have different labels or tags")
            if not tuned and any((k in sub) != (k in arrays) or (k in sub and not np.array_equal(sub[k], arrays[k]))
                                 for k in ("decode/start", "decode/move")):  # one decoder reads both models' tags
                raise ModelError("a cascade's two models decode tags differently")
        try:
            self.labels: list[str] = list(model["labels"])
            self.tags: list[str] = list(model.get("tags", ()))
            f32 = {k: np.asarray(v, np.float32) for k, v in arrays.items()
                   if k not in ("vocabulary", "idf", "families") and not (k == "embed" and v.dtype == np.float16)}
            vectors = require_vectors(model["vectors"]) if model.get("vectors") else None
            self.featurizer = Featurizer.from_arrays(
                arrays["vocabulary"], arrays["idf"], arrays["families"], model["features"],
                vectors, f32["vectors/center"] if vectors is not None else None,
            )
            if self.featurizer.config.morphemes:  # a Korean bot's: the analyzer loads now, not on its first turn
                korean.require(model.get("analyzer", korean.reference()))
            if model.get("context"):
                if vectors is None:
                    raise ModelError("a snapshot with a sentence encoder needs word vectors")
                self.featurizer.context = require_encoder(model["context"])
            self.w_vec = f32.get("vectors/kernel")
            """Projection of the word vectors (None: they are fed as they are)."""
            self.vdim = 0 if vectors is None else vectors.dim if self.w_vec is None else self.w_vec.shape[1]
            """Width of the word-vector part of the network's input (0: none)."""
            self.embed = f32["embed"] if "embed" in f32 else np.asarray(arrays["embed"])
            """The embedding table, float32 or float16 (``TrainConfig.float16``: rows are read as float32)."""
            self.w_sent, self.b_sent = f32["sentence/kernel"], f32["sentence/bias"]
            self.w_int, self.b_int = f32["intent/kernel"], f32["intent/bias"]
            self.has_tags = len(self.tags) > 1
            self.pool = bool(model.get("shape", {}).get("pool", False))
            self.skip = bool(model.get("shape", {}).get("skip", False)) and vectors is not None
            """The intent head also reads the utterance's vector (the last rows of its kernel)."""
            if self.has_tags or self.pool:
                layers = int(model.get("shape", {}).get("conv_layers", 2))
                self.conv = [flat_conv(f32[f"conv{i}/kernel"], f32[f"conv{i}/bias"]) for i in range(1, layers + 1)]
                """``(kernel as [input, width * filters], bias, width)`` per convolution: one product per
                token gives its term for every slot of the kernel."""
            if self.has_tags:
                self.w_tag, self.b_tag = f32["tags/kernel"], f32["tags/bias"]
                prior = {k: f32[k] for k in ("decode/start", "decode/move")} if "decode/move" in f32 else None
                self.decoder = TagDecoder(self.tags, prior)
        except KeyError as exc:
            raise ModelError(f"snapshot lacks {exc.args[0]!r}") from None
        if (
            self.embed.shape[0] != self.featurizer.size or self.w_int.shape[1] != len(self.labels)
            or self.w_sent.shape[0] != self.embed.shape[1] + self.vdim
            or self.w_int.shape[0] != self.w_sent.shape[1] + (len(self.conv[-1][1]) if self.pool else 0)
            + (self.featurizer.vectors.dim if self.skip else 0)
        ):
            raise ModelError("snapshot weights do not match its vocabulary and labels")
        self.definition = BotDefinition.from_dict(manifest["definition"]) if "definition" in manifest else None
        calibrated = model.get("threshold", 0.5)
        configured = self.definition.fallback.threshold if self.definition else None
        self.threshold: float = calibrated if configured is None else configured
        self.scope = Scope(model["scope"], arrays) if model.get("scope") and has_scope(arrays) else None
        """The in-scope score of this (bag) model, :mod:`botyard.models.scope` (None: not in the snapshot)."""
        self.score_threshold: float | None = self.scope.threshold if self.scope is not None and configured is None else None
        """Falls back below this in-scope score (None: the confidence threshold decides; a bot file
        that fixes ``fallback.threshold`` fixes the whole rule)."""
        d = self.definition
        self.matchers = Matchers(d.entities, language=d.language, timezone=d.timezone) if d else Matchers(())
        self.nbytes = sum(a.nbytes for a in arrays.values())
        self._first = self.conv[0][0] if self.has_tags or self.pool else None
        """The first convolution's kernel (None: the model has no token convolutions)."""
        self._tokens: dict[str, tuple] = {}
        """Per token seen, what depends on it alone (see :meth:`_entries`)."""
        self._pairs: dict[tuple[str, str], int] = {}
        """Vocabulary row (0: none) of each lower-cased word bigram seen."""
        per_token = 600 + (self._first.nbytes // self._first.shape[0] if self._first is not None else 0)
        self._token_cap = 0
        """Entries each cache keeps before it starts afresh (see :data:`CACHE_SHARE`); 0: no caching."""
        if self._first is not None:
            self._token_cap = min(8192, max(256, int(self.nbytes * CACHE_SHARE) // per_token))
            self.nbytes += self._token_cap * per_token  # reserved: a model cache counts what it can grow to
        if self.fallback is not None:
            self.nbytes += self.fallback.nbytes

    @classmethod
    def from_snapshot(cls, snapshot) -> "Predictor":
        return cls(snapshot.manifest, snapshot.arrays)

    # ------------------------------------------------------------------ network
    def _rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows of the embedding table as float32 (a float16 table's through :data:`HALF_TO_FLOAT`)."""
        if self.embed.dtype != np.float16:
            return self.embed[rows]
        return np.take(HALF_TO_FLOAT, self.embed.view(np.uint16)[rows])

    def _entries(self, tokens: Sequence[str]) -> list[tuple]:
        """Per token, the work that depends on the token alone, cached per snapshot: ``(sentence
        rows, first-convolution terms, word vector's piece sum and count, lower-cased token,
        the word is known)``."""
        return self._cached(self._tokens, tokens, self._token_work)

    def _cached(self, cache: dict, keys: Sequence, compute: Callable[[list], list]) -> list:
        """``cache``'s values for ``keys``, computing the missing ones as a batch; a cache that
        would pass :attr:`_token_cap` starts afresh (and with a cap of 0 keeps nothing)."""
        found = [cache.get(k) for k in keys]
        if None in found:  # another thread may clear the cache meanwhile: answer from `new`
            missing = list(dict.fromkeys(k for k, v in zip(keys, found) if v is None))
            new = dict(zip(missing, compute(missing)))
            if len(cache) + len(new) > self._token_cap:
                cache.clear()
            if self._token_cap:
                cache.update(new)
            found = [new[k] if v is None else v for k, v in zip(keys, found)]
        return found

    def _token_work(self, tokens: list[str]) -> list[tuple]:
        """:meth:`_entries` for tokens not yet cached, as a batch."""
        f = self.featurizer
        rows = f.token_rows(tokens)
        static = self.vdim and f.context is None  # contextual token vectors are not the token's alone
        vec_rows = [f.vectors.word(t, f.center) for t in tokens] if static else [None] * len(tokens)
        d = self.vdim and f.vectors.dim
        terms = [None] * len(tokens)
        if self._first is not None:
            # Each token's input is a weighted sum of its features' rows (and its projected word
            # vector); times the first kernel, it is the token's term for every slot of it. One
            # token at a time: a row of a batched product depends on the batch's size (BLAS
            # picks other kernels), and a token's term must not depend on its neighbours.
            for i, ((_, bag_rows, bag_weights, _), v) in enumerate(zip(rows, vec_rows)):
                x = bag_weights @ self._rows(bag_rows)
                if static:
                    terms[i] = np.concatenate([x, v[:d] if self.w_vec is None else v[:d] @ self.w_vec]) @ self._first
                else:  # the bag's rows of the kernel only
                    terms[i] = x @ self._first[: len(x)]
        return [
            (r[0], z, v[d:] if static else None, t.lower(), r[3]) for r, z, v, t in zip(rows, terms, vec_rows, tokens)
        ]

    def _ngram_rows(self, lower: list[str]) -> np.ndarray:
        """Known vocabulary rows of the utterance's word n-grams (bigrams: cached per pair)."""
        f = self.featurizer
        if f.config.word_ngrams != 2:
            rows = f.rows(ngram_hashes(lower, f.config.word_ngrams))
            return rows[rows > 0]
        pairs = list(zip(lower, lower[1:]))
        rows = self._cached(self._pairs, pairs, lambda missing: f.rows(ngram_hashes_of_pairs(missing)).tolist())
        return np.array([r for r in rows if r], np.int64)

    def _bag(self, parts: list[np.ndarray], lower: list[str]) -> np.ndarray:
        """The sentence bag's embedding from the tokens' sentence rows (in any grouping) and the
        lower-cased tokens: sublinear TF x IDF, L2-normalised per family (as
        :meth:`Featurizer.analyze` weighs it), times the embedding rows."""
        if len(lower) > 1 or self.featurizer.config.word_ngrams != 2:
            parts = [*parts, self._ngram_rows(lower)]
        if self.featurizer.config.morphemes:  # a Korean utterance's ending (어요/EF, 까/EF ...), its length
            rows = self.featurizer.rows(ending_hashes(lower, self.featurizer.config))
            parts = [*parts, rows[rows > 0]]
        rows = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        if not len(rows):
            return np.zeros(self.embed.shape[1], np.float32)
        rows.sort()  # unique rows and their counts (np.unique, with less overhead)
        first = np.empty(len(rows), bool)
        first[0] = True
        np.not_equal(rows[1:], rows[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        uniq = rows[starts]
        counts = np.empty(len(starts), np.float32)
        counts[:-1] = starts[1:] - starts[:-1]
        counts[-1] = len(rows) - starts[-1]
        f = self.featurizer
        features = uniq - 1
        weights = (1.0 + np.log(counts)) * f.idf[features]
        chars = (f.families[features] == CHAR).view(np.int8)
        # Per family (0: words and n-grams, 1: characters): an IDF is >= 1, so a family present has a norm > 0.
        weights /= np.sqrt(np.bincount(chars, weights * weights, minlength=2))[chars]
        return weights @ self._rows(uniq)

    def forward(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """Intent probabilities and, if the bot has learned entities, tag probabilities per token."""
        return self._outputs(tokens)[:2]

    def _outputs(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, bool, float | None]:
        """:meth:`forward`'s, the tag logits minus each token's largest (for decoding),
        whether any token is a word the model was trained on, and the in-scope score (None
        without one). In a cascade, the second model's when this one's intent confidence is
        below the gate (the score stays this model's)."""
        out = self._decided.pop(tuple(tokens), None) if self._decided else None
        if out is None:
            out = self._own_outputs(tokens)
        if self.fallback is not None and out[0].max() < self.gate:
            second = self.fallback._outputs(tokens)
            return (*(second if self.blend == 1.0 else blended(out, second, self.blend))[:4], out[4])
        return out

    def escalates(self, tokens: Sequence[str]) -> bool:
        """Whether a cascade's second model answers this utterance. The bag model's outputs are
        kept for the next answer to the same tokens (a node asks before it answers a burst)."""
        if self.fallback is None:
            return False
        out = self._own_outputs(tokens)
        if len(self._decided) >= DECIDED:
            self._decided.clear()
        self._decided[tuple(tokens)] = out
        return bool(out[0].max() < self.gate)

    def sentence_vector(self, tokens: Sequence[str]) -> np.ndarray:
        """The sentence layer's output for the tokens (what the in-scope score reads)."""
        return self._own_outputs(tokens, sentence_only=True)

    def _own_outputs(self, tokens: Sequence[str], sentence_only: bool = False):
        f = self.featurizer
        context = f.context.encode(tokens) if f.context is not None else None
        if self._first is None:  # no token convolutions, no per-token cache: every token at once
            entries = None
            rows, knows_a_word = f.sentence_rows(tokens)
            bag = self._bag([rows], [t.lower() for t in tokens])
            if self.vdim and context is None:
                d = f.vectors.dim
                pieces = [f.vectors.word(t, f.center)[d:] for t in tokens]
        else:
            entries = self._entries(tokens)
            knows_a_word = any(e[4] for e in entries)
            bag = self._bag([e[0] for e in entries], [e[3] for e in entries])
            pieces = [e[2] for e in entries] if self.vdim and context is None else []
        if self.vdim:
            if context is not None:
                vec = context[0] * np.float32(f.vectors.scale)
            elif pieces:
                vec = f.vectors.sentence(np.array(pieces), f.center)
            else:
                vec = np.zeros(f.vectors.dim, np.float32)
            raw = vec
            if self.w_vec is not None:
                vec = vec @ self.w_vec
            sentence = relu(np.concatenate([bag, vec]) @ self.w_sent + self.b_sent)
        else:
            sentence = relu(bag @ self.w_sent + self.b_sent)
        if sentence_only:
            return sentence
        x = None
        if self._first is not None and tokens:
            # Conv1D(padding="same") as products per token and shifted sums: the first
            # convolution's products are cached per token; later ones take one product.
            n = len(tokens)
            for i, (flat, bias, width) in enumerate(self.conv):
                filters, pad = len(bias), width // 2
                z = np.zeros((n + 2 * pad, flat.shape[1]), np.float32)
                if i == 0:
                    z[pad : pad + n] = [e[1] for e in entries]
                    if context is not None and self.vdim:  # + the contextual token vectors' part
                        words = context[1] * np.float32(f.vectors.scale)
                        if self.w_vec is not None:
                            words = words @ self.w_vec
                        z[pad : pad + n] += words @ flat[self.embed.shape[1] :]
                else:
                    z[pad : pad + n] = (flat.T @ x.T).T
                x = shifted_sum(z, n, width, filters)
                x += bias
                relu(x)
        if self.pool:
            pooled = x.max(axis=0) if x is not None else np.zeros(len(self.conv[-1][1]), np.float32)
            logits = sentence @ self.w_int[: len(sentence)] + pooled @ self.w_int[len(sentence) :][: len(pooled)] + self.b_int
        else:
            logits = sentence @ self.w_int[: len(sentence)] + self.b_int
        if self.skip:
            logits += raw @ self.w_int[-len(raw) :]
        intent = softmax(logits)
        score = None
        if self.scope is not None:
            best = int(intent.argmax())
            score = self.scope.score(sentence, best, float(intent[best]))
        if not self.has_tags or x is None:
            return intent, None, None, knows_a_word, score
        # [x, sentence] @ W == x @ W[:conv] + sentence @ W[conv:]
        split = x.shape[1]
        logits = x @ self.w_tag[:split] + (sentence @ self.w_tag[split:] + self.b_tag)
        return (intent, *softmax_shifted(logits), knows_a_word, score)

    # ------------------------------------------------------------------ serving
    def decode(self, tag_probs: np.ndarray, shifted: np.ndarray | None = None) -> list[int]:
        """Tag indices per token: the best BIO-consistent path (see :mod:`botyard.models.decoding`)."""
        return self.decoder.decode(tag_probs, shifted)

    def predict_tokens(self, tokens: Sequence[str]) -> tuple[str, float, list[str]]:
        """Intent, confidence and one BIO tag per token (for evaluation on pre-tokenised data)."""
        return self.assess_tokens(tokens)[:3]

    def assess_tokens(self, tokens: Sequence[str]) -> Assessment:
        """:meth:`predict_tokens` with the in-scope score, whether a word is known, and why the
        answer would fall back (None: it would not)."""
        intent, tags, shifted, knows_a_word, score = self._outputs(tokens)
        best = int(intent.argmax())
        tag_names = [self.tags[i] for i in self.decode(tags, shifted)] if tags is not None else ["O"] * len(tokens)
        label, confidence = self.labels[best], float(intent[best])
        reason = self.fallback_reason(label, confidence, knows_a_word, score)
        return Assessment(label, confidence, tag_names, score, knows_a_word, reason)

    def fallback_reason(self, label: str, confidence: float, knows_a_word: bool, score: float | None) -> str | None:
        """Why an answer falls back (:data:`FALLBACK_REASONS`), or None."""
        if label == OUT_OF_SCOPE:
            return "out_of_scope_class"
        if not knows_a_word:
            return "no_known_word"
        if self.score_threshold is not None and score is not None:
            return "low_score" if score < self.score_threshold else None
        return "low_confidence" if confidence < self.threshold else None

    def predict(self, text: str, now: float | None = None) -> Prediction:
        """``now``: the turn's time (seconds since the epoch), which relative dates and times
        (``tomorrow``, ``in two hours``) count from; default: the current time."""
        tokens = tokenize(text)
        words = [t.text for t in tokens]
        intent, tags, shifted, knows_a_word, score = self._outputs(words)
        best = int(intent.argmax())
        return self.prediction(
            text, tokens, self.labels[best], float(intent[best]), tags, shifted, knows_a_word=knows_a_word, now=now,
            score=score,
        )

    def at(self, prediction: Prediction, text: str, now: float) -> Prediction:
        """``prediction`` of ``text`` as if made at ``now``: its matchers' entities found again
        when the bot has dates or times (replay and what-if re-run recorded turns as of their
        own time, sharing one prediction per text)."""
        if not self.matchers.timed:
            return prediction
        entities = [e for e in prediction.entities if e.extractor == "model"] + self.matchers.find(text, now)
        entities.sort(key=lambda e: (e.start, -e.end, e.entity))
        return replace(prediction, entities=tuple(entities))

    def prediction(
        self, text: str, tokens: Sequence, label: str, confidence: float, tags: np.ndarray | None,
        shifted: np.ndarray | None = None, *, knows_a_word: bool = True, now: float | None = None,
        score: float | None = None,
    ) -> Prediction:
        """The answer from the network's outputs: entities cut from the best tag path (if
        ``tags``; ``shifted``: the tag logits minus each token's largest, see :meth:`decode`),
        the matchers' entities, and whether to fall back and why (:meth:`fallback_reason`: out
        of scope, no word the model was trained on, see :meth:`Featurizer.token_rows`, or below
        the in-scope ``score``'s or the confidence's threshold). ``now``: the turn's time, for
        relative dates and times (see :meth:`predict`)."""
        entities: list[Entity] = []
        if tags is not None:
            path = self.decode(tags, shifted)
            spans = tag_spans([self.tags[i] for i in path])
            probs = tags[np.arange(len(path)), path].tolist() if spans else ()
            for entity, first, last in spans:  # confidence: the mean probability of the span's tags
                start, end = tokens[first].start, tokens[last - 1].end
                if self.featurizer.config.morphemes:  # 부츠를 -> 부츠: the particles stay out
                    end = tokens[last - 1].start + korean.stem_end(tokens[last - 1].text)
                conf = sum(probs[first:last]) / (last - first)
                entities.append(Entity(entity, text[start:end], start, end, "model", round(conf, 4)))
        if self.matchers:
            entities.extend(self.matchers.find(text, now))
        entities.sort(key=lambda e: (e.start, -e.end, e.entity))
        reason = self.fallback_reason(label, confidence, knows_a_word, score)
        return Prediction(label, confidence, tuple(entities), reason is not None, reason, score)
