"""The shared sentence encoder (MiniLM-L6 in numpy): what it computes, and how snapshots refer to it."""

import numpy as np
import pytest

from botyard.models import encoder
from botyard.models.errors import ModelError
from botyard.models.runtime import Predictor
from botyard.models.text import tokenize
from botyard.training.config import TrainConfig
from botyard.training.errors import TrainingError
from botyard.training.pipeline import train


def words(text: str) -> list[str]:
    return [t.text for t in tokenize(text)]


@pytest.fixture(scope="module")
def sentence_encoder():
    found = encoder.available()
    assert found is not None, "word vectors not installed: bash training/install-vectors.sh"
    return found


def test_paraphrases_are_closer_than_unrelated_utterances(sentence_encoder):
    reset = sentence_encoder.encode(words("how do I reset my password"))[0]
    forgot = sentence_encoder.encode(words("I forgot my password"))[0]
    weather = sentence_encoder.encode(words("what is the weather in Paris tomorrow"))[0]
    assert reset.shape == (384,) and reset.dtype == np.float32
    assert abs(float(np.linalg.norm(reset)) - 1.0) < 1e-5
    assert float(reset @ forgot) > 0.6 > 0.2 > float(reset @ weather)
    # the encoder reads order, unlike a bag of words
    a, b = sentence_encoder.encode(words("dog bites man")), sentence_encoder.encode(words("man bites dog"))
    assert float(a[0] @ b[0]) < 0.999
    # and each word in its sentence: "bank" by a river is not "bank" of an account
    river = sentence_encoder.encode(words("we sat on the bank of the river"))[1][4]
    money = sentence_encoder.encode(words("I opened an account at the bank"))[1][6]
    again = sentence_encoder.encode(words("the bank of the river was muddy"))[1][1]
    assert abs(float(np.linalg.norm(river)) - 1.0) < 1e-5
    assert float(river @ again) > float(river @ money)


def test_batches_of_mixed_lengths_equal_one_at_a_time(sentence_encoder):
    texts = ["hi", "where is my order A-1234?", "", "can I pay with PayPal or Klarna when I order twice", "thx"]
    batched = sentence_encoder.encode_many([words(t) for t in texts], batch=3)
    for text, (sentence, per_word) in zip(texts, batched):
        sentence_encoder._cache.clear()
        alone, alone_words = sentence_encoder.encode(words(text))
        assert np.abs(sentence - alone).max() < 1e-5, text
        assert per_word.shape == (len(words(text)), 384)
        assert np.abs(per_word - alone_words).max(initial=0.0) < 1e-5, text


def test_batches_spread_over_cores_equal_batches_run_one_after_another(sentence_encoder, monkeypatch):
    """Vectors for training are the same bits whatever the machine's number of cores: each batch
    runs on one BLAS thread, and batches in parallel threads do not touch each other's numbers."""
    from threadpoolctl import threadpool_info

    assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")
    texts = [words(t) for t in (
        "hi", "where is my order A-1234?", "can I pay with PayPal", "what's the weather in Paris tomorrow",
        "set an alarm for seven", "play some jazz", "thx", "how much is shipping to Austria", "bye",
    )]
    monkeypatch.setattr(encoder.os, "cpu_count", lambda: 4)
    spread = sentence_encoder.encode_many(texts, batch=2)
    monkeypatch.setattr(encoder.os, "cpu_count", lambda: 1)
    serial = sentence_encoder.encode_many(texts, batch=2)
    for (a, a_words), (b, b_words) in zip(spread, serial):
        assert np.array_equal(a, b) and np.array_equal(a_words, b_words)


def test_the_cache_is_bounded(sentence_encoder, monkeypatch):
    monkeypatch.setattr(sentence_encoder._cache, "size", 3)
    for i in range(6):
        sentence_encoder.encode(["utterance", str(i)])
    assert len(sentence_encoder._cache) == 3
    again = sentence_encoder.encode(["utterance", "5"])
    assert again is sentence_encoder._cache[("utterance", "5")]


def test_words_past_what_the_encoder_reads_get_zeros(sentence_encoder):
    tokens = ["order"] * (encoder.MAX_PIECES + 10)
    sentence, per_word = sentence_encoder.encode(tokens)
    assert per_word.shape == (len(tokens), 384)
    assert np.all(per_word[encoder.MAX_PIECES - 2 :] == 0) and np.all(np.abs(per_word[: encoder.MAX_PIECES - 2]).sum(1) > 0)


def test_a_context_snapshot_refers_to_its_encoder_by_hash(example_bot, sentence_encoder, monkeypatch):
    from botyard.models import vectors

    result = train(example_bot, TrainConfig(epochs=3, seed=1, context=True, folds=1, no_final_fit=True))
    reference = result.manifest["model"]["context"]
    assert reference == sentence_encoder.reference() and len(reference["sha256"]) == 64
    assert all(a.size < 1_000_000 for a in result.arrays.values())  # the encoder's weights are not in it
    predictor = Predictor(result.manifest, result.arrays)
    assert predictor.featurizer.context is sentence_encoder  # one per process, for every snapshot
    assert predictor.predict("where is my order?").intent == "order_status"

    other = {**result.manifest, "model": {**result.manifest["model"], "context": {**reference, "sha256": "f" * 64}}}
    with pytest.raises(ModelError, match="needs encoder weights ffffffffffff"):
        Predictor(other, result.arrays)
    monkeypatch.setenv(vectors.ENV, "")
    with pytest.raises(ModelError, match="not installed"):
        Predictor(result.manifest, result.arrays)
    with pytest.raises(TrainingError, match="needs the word vectors"):
        train(example_bot, TrainConfig(epochs=1, context=True))


def test_priming_encodes_a_batch_in_one_pass_and_answers_from_it(sentence_encoder, monkeypatch):
    texts = [words(t) for t in ("prime me once", "and me as well", "prime me once", "a third one here")]
    sentence_encoder._cache.clear()
    passes = []
    hidden = sentence_encoder.hidden
    monkeypatch.setattr(sentence_encoder, "hidden", lambda ids, mask: passes.append(ids.shape) or hidden(ids, mask))
    assert sentence_encoder.prime(texts) == 3  # the repeated utterance once
    assert len(passes) == 1 and passes[0][0] == 3
    primed = sentence_encoder.encode(texts[1])
    assert len(passes) == 1 and primed is sentence_encoder._cache[tuple(texts[1])]
    assert sentence_encoder.prime(texts) == 0 and len(passes) == 1  # all cached: nothing to do
    sentence_encoder._cache.clear()
    alone = sentence_encoder.encode(texts[1])
    assert np.abs(alone[0] - primed[0]).max() < 1e-5 and np.abs(alone[1] - primed[1]).max() < 1e-5
