"""The numpy runtime equals Keras on every architecture, and serving never imports TensorFlow."""

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from botyard.models.runtime import Predictor
from botyard.models.text import tokenize
from botyard.training.config import TrainConfig
from botyard.training.pipeline import train


@pytest.fixture(scope="module")
def example_bot(old_example_bot):
    """These tests train many variants of the example bot to check the runtime against Keras,
    which does not depend on the examples: they train it as it was at 1f88b70 (328 examples,
    not today's 812), which halves their time."""
    return old_example_bot


UTTERANCES = [
    "where is my order?",
    "hi there",
    "Can I pay with PayPal or Klarna",
    "my parcel never arrived and I'm getting annoyed",
    "how much does delivery cost to Austria",
    "how long does shipping to the Czech Republic take",
    "thx a lot",
    "something completely unrelated about quantum physics",
    "ordr statsu",
    "",
    "?!",
]


def intents_only(example_bot):
    """The example bot without learned entities: the model has no tag head."""
    data = example_bot.to_dict()
    data["entities"] = [e for e in data["entities"] if e["type"] != "learned"]
    data.pop("dialogue", None)  # its slots name the learned entity; the model does not read them
    for intent in data["intents"]:
        intent["examples"] = [e.replace("](country)", "](product)") for e in intent["examples"]]
    return type(example_bot).from_dict(data)


ARCHITECTURES = [
    "joint", "intents-only", "intents-pooled", "joint-pooled", "joint-novectors", "intents-novectors", "joint-prior",
    "joint-context", "intents-context", "joint-float16", "intents-float16", "joint-cascade", "joint-tuned",
    "intents-tuned", "joint-tuned-top2",
]


def config_of(name: str) -> TrainConfig:
    return TrainConfig(
        epochs=6, seed=3, pool="pooled" in name, vectors="novectors" not in name,
        transition_weight=0.7 if "prior" in name else 0.0, context="context" in name,
        float16="float16" in name, cascade="cascade" in name, tuned="tuned" in name, context_epochs=2 if "tuned" in name else 0,
        tuned_layers=2 if "top2" in name else 6,
        folds=1, no_final_fit=True,  # one training per variant: these tests are about the runtime, not calibration
    )


@pytest.fixture(scope="module", params=ARCHITECTURES)
def trained(request, example_bot):
    bot = intents_only(example_bot) if request.param.startswith("intents") else example_bot
    result = train(bot, config_of(request.param))
    assert bool(result.manifest["model"].get("vectors")) == ("novectors" not in request.param), "word vectors not installed?"
    assert bool(result.manifest["model"].get("context")) == ("context" in request.param)
    return result


def models_of(trained) -> list[tuple[dict, dict]]:
    """(model manifest, arrays) of each model in a snapshot: a cascade holds two."""
    from botyard.models.runtime import cascade_parts

    return cascade_parts(trained.manifest["model"], trained.arrays)


def test_runtime_equals_keras(trained, example_bot):
    for meta, arrays in models_of(trained):
        _runtime_equals_keras(meta, arrays, example_bot)


def _runtime_equals_keras(meta, arrays, example_bot):
    from botyard.models.tuned import KIND

    if meta["kind"] == KIND:
        return _tuned_equals_keras(meta, arrays, example_bot)
    import tensorflow as tf

    from botyard.training import network

    model = network.from_arrays(meta, arrays)
    predictor = Predictor({"model": meta}, arrays)
    featurizer = predictor.featurizer  # with the shared word vectors, if the model reads them
    names = {t.name for t in model.inputs}
    texts = UTTERANCES + [i.examples[0] for i in example_bot.intents]
    worst = 0.0
    for text in texts:
        tokens = [t.text for t in tokenize(text)]
        inputs = {k: v for k, v in featurizer.batch([tokens]).items() if k in names}
        keras_out = model.predict(tf.data.Dataset.from_tensors(inputs), verbose=0)
        intent, tags = predictor.forward(tokens)
        assert intent.shape == keras_out["intent"][0].shape
        worst = max(worst, float(np.abs(intent - keras_out["intent"][0]).max()))
        if meta["tags"] and tokens:
            assert tags.shape == keras_out["tags"][0].shape
            worst = max(worst, float(np.abs(tags - keras_out["tags"][0]).max()))
        else:
            assert tags is None
    assert worst <= 1e-5


def _tuned_equals_keras(meta, arrays, example_bot):
    """A fine-tuned encoder's probabilities in numpy and in Keras, one utterance at a time and
    padded in one batch."""
    from botyard.models import encoder
    from botyard.models.tuned import TunedModel
    from botyard.training import tuned_network

    shared = encoder.available()
    model, runtime = tuned_network.from_arrays(shared, meta, arrays), TunedModel(meta, arrays)
    utterances = [[t.text for t in tokenize(text)] for text in UTTERANCES + [i.examples[0] for i in example_bot.intents]]
    together = model(tuned_network.inputs_of(shared, utterances))
    worst = 0.0
    for row, tokens in enumerate(utterances):
        alone = model(tuned_network.inputs_of(shared, [tokens]))
        intent, tags = runtime.forward(tokens)
        for keras_out in (alone, {k: v[row : row + 1] for k, v in together.items()}):
            worst = max(worst, float(np.abs(intent - np.asarray(keras_out["intent"][0])).max()))
            if meta["tags"] and tokens:
                assert tags.shape == (len(tokens), len(meta["tags"]))
                worst = max(worst, float(np.abs(tags - np.asarray(keras_out["tags"][0])[: len(tokens)]).max()))
            else:
                assert tags is None
    assert worst <= 1e-5


def test_float16_halves_the_bytes_and_rounds_only_the_weights(example_bot):
    """The same training with the embedding table in half precision: the table is float16 in the
    snapshot and in the loaded model, both save half the table's bytes, and the answers move
    only by the rounding."""
    from botyard.snapshots.format import pack, unpack

    config = TrainConfig(epochs=6, seed=3)
    full = train(example_bot, config)
    half = train(example_bot, replace(config, float16=True))
    assert half.arrays["embed"].dtype == np.float16 and full.arrays["embed"].dtype == np.float32
    assert np.array_equal(half.arrays["embed"], full.arrays["embed"].astype(np.float16))
    snapshot_id, data = pack(half.manifest, half.arrays)
    _, full_data = pack(full.manifest, full.arrays)
    saved = full.arrays["embed"].nbytes // 2
    assert len(data) <= len(full_data) - saved
    loaded = unpack(snapshot_id, data)
    assert loaded.arrays["embed"].dtype == np.float16
    a, b = Predictor(full.manifest, full.arrays), Predictor.from_snapshot(loaded)
    assert b.embed.dtype == np.float16 and b.nbytes == a.nbytes - saved
    texts = UTTERANCES + [e for i in example_bot.intents for e in i.examples]
    worst, same = 0.0, 0
    for text in texts:
        tokens = [t.text for t in tokenize(text)]
        (p, _tags), (q, _half_tags) = a.forward(tokens), b.forward(tokens)
        assert q.dtype == np.float32
        worst = max(worst, float(np.abs(p - q).max()))
        same += int(p.argmax() == q.argmax())
    assert 0 < worst < 0.01
    assert same >= len(texts) - 2


def test_batched_runtime_equals_the_serving_path(trained, example_bot):
    """What-if replays with the batched runtime: same intents, entities and fallbacks."""
    from botyard.models.batch import predict_batch

    predictor = Predictor(trained.manifest, trained.arrays)
    texts = UTTERANCES + [i.examples[0].replace("[", "").replace("]", " ") for i in example_bot.intents]
    texts += ["where is order A-1234", "ship it to Germany please", "   "]
    one_by_one = [predictor.predict(t) for t in texts]
    for size in (1, 4, len(texts)):
        batched = [p for i in range(0, len(texts), size) for p in predict_batch(predictor, texts[i : i + size])]
        for text, a, b in zip(texts, one_by_one, batched):
            assert (a.intent, a.fallback) == (b.intent, b.fallback), text
            assert abs(a.confidence - b.confidence) <= 1e-5, text
            assert [(e.entity, e.value, e.start, e.end) for e in a.entities] == [
                (e.entity, e.value, e.start, e.end) for e in b.entities
            ], text
    assert predict_batch(predictor, []) == []


def test_per_token_cache_changes_no_answer(trained, example_bot):
    """Answers from the per-token cache equal those computed afresh, also when the cache
    fills and starts over in the middle of an utterance's batch."""
    texts = UTTERANCES + [i.examples[0] for i in example_bot.intents] + ["where is order A-1234 A-1234"]
    tokens = [[t.text for t in tokenize(text)] for text in texts]
    fresh = [Predictor(trained.manifest, trained.arrays).forward(t) for t in tokens]
    predictor = Predictor(trained.manifest, trained.arrays)
    predictor._token_cap = 3
    for _ in range(2):
        for t, (intent, tags) in zip(tokens, fresh):
            got_intent, got_tags = predictor.forward(t)
            assert np.array_equal(got_intent, intent)
            assert (got_tags is None and tags is None) or np.array_equal(got_tags, tags)
    assert len(predictor._tokens) <= 3 + max(len(t) for t in tokens)


def test_a_predictor_counts_what_its_caches_can_grow_to(trained, example_bot):
    """A node's model cache is bounded by ``Predictor.nbytes``: models with token
    convolutions reserve their per-token caches' cap from load, and intent-only models keep
    no per-token cache, so no predictor grows past what it declared."""
    predictor = Predictor(trained.manifest, trained.arrays)
    arrays_bytes = sum(a.nbytes for a in trained.arrays.values()) + getattr(predictor.fallback, "reserved", 0)
    texts = UTTERANCES + [e for i in example_bot.intents for e in i.examples]
    for text in texts:
        predictor.forward([t.text for t in tokenize(text)])
    if predictor._first is None:  # no token convolutions
        assert predictor.nbytes == arrays_bytes
        assert not predictor._tokens and not predictor._pairs
    else:
        assert predictor.nbytes > arrays_bytes
        assert 0 < len(predictor._tokens) <= predictor._token_cap
        assert len(predictor._pairs) <= predictor._token_cap


def test_same_data_and_seed_same_snapshot(trained, example_bot):
    from botyard.snapshots.format import pack

    bot = type(example_bot).from_dict(trained.manifest["definition"])
    again = train(bot, TrainConfig(**{**trained.manifest["training"], "features": TrainConfig().features}))
    assert pack(again.manifest, again.arrays)[0] == pack(trained.manifest, trained.arrays)[0]


def test_model_learns_the_example_bot(trained):
    predictor = Predictor(trained.manifest, trained.arrays)
    assert predictor.predict("where is my order?").intent == "order_status"
    assert predictor.predict("Can I pay with PayPal").intent == "payment_methods"


def test_corrupt_arrays_are_a_model_error(trained):
    from botyard.models.errors import ModelError

    arrays = dict(trained.arrays)
    del arrays["intent/kernel"]
    with pytest.raises(ModelError, match="intent/kernel"):
        Predictor(trained.manifest, arrays)
    arrays = dict(trained.arrays, embed=trained.arrays["embed"][:-1])
    with pytest.raises(ModelError, match="do not match"):
        Predictor(trained.manifest, arrays)
    with pytest.raises(ModelError, match="unsupported model kind"):
        Predictor({**trained.manifest, "model": {**trained.manifest["model"], "kind": "bag-mlp"}}, trained.arrays)


def test_serving_path_never_imports_tensorflow():
    code = (
        "import sys, botyard, botyard.ops.node, botyard.ops.cli, botyard.models.runtime, botyard.snapshots;"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_word_vectors_are_shared_and_referred_to_by_hash(trained, monkeypatch):
    """A snapshot holds a reference to the word vectors (and their mean), not the table;
    a node without them, or with other ones, refuses it with a ModelError."""
    from botyard.models import vectors
    from botyard.models.errors import ModelError

    reference = trained.manifest["model"].get("vectors")
    if not reference:
        assert "vectors/center" not in trained.arrays
        return
    assert set(reference) == {"name", "sha256", "dim", "scale"}
    assert trained.arrays["vectors/center"].shape == (reference["dim"],)
    assert all(a.size < 30_522 * reference["dim"] for a in trained.arrays.values())
    first, second = Predictor(trained.manifest, trained.arrays), Predictor(trained.manifest, trained.arrays)
    assert first.featurizer.vectors.table is second.featurizer.vectors.table  # one mapped table per process
    other = {**trained.manifest, "model": {**trained.manifest["model"], "vectors": {**reference, "sha256": "0" * 64}}}
    with pytest.raises(ModelError, match="needs word vectors 000000000000"):
        Predictor(other, trained.arrays)
    monkeypatch.setenv(vectors.ENV, "")
    with pytest.raises(ModelError, match="not installed"):
        Predictor(trained.manifest, trained.arrays)


def test_training_without_installed_vectors_leaves_them_out(example_bot, monkeypatch):
    from botyard.models import vectors

    monkeypatch.setenv(vectors.ENV, "")
    result = train(intents_only(example_bot), TrainConfig(epochs=1, seed=3))
    assert "vectors" not in result.manifest["model"] and result.manifest["model"]["shape"]["vectors"] == 0
    assert Predictor(result.manifest, result.arrays).predict("where is my order?").intent


def test_wordpiece_matches_bert():
    from botyard.models import vectors

    wv = vectors.available()
    assert wv is not None, "word vectors not installed: bash training/install-vectors.sh"
    names = {i: p for p, i in wv.vocab.items()}
    assert wv.pieces("hello") == [wv.vocab["hello"]]
    split = [names[i] for i in wv.pieces("Unaffable")]  # greedy longest match first
    assert len(split) > 1 and "".join(p.removeprefix("##") for p in split) == "unaffable"
    assert all(p.startswith("##") for p in split[1:]) and "unaffable"[: len(split[0]) + 1] not in wv.vocab
    assert wv.pieces("Café") == wv.pieces("cafe")
    assert wv.pieces("x" * 101) == [wv.unknown]


def test_a_cascade_answers_with_its_second_model_below_the_gate(example_bot):
    """The bag model answers what it is sure of; below the gate, the context tier answers
    (intent, confidence, entities), one utterance or a batch; gate 0 never sends an utterance
    on, gate 1 always does. Both models come from the same examples, in one snapshot."""
    from botyard.models.batch import predict_batch
    from botyard.models.errors import ModelError
    from botyard.models.runtime import CASCADE
    from botyard.snapshots.format import pack, unpack

    result = train(example_bot, config_of("joint-cascade"))
    meta = result.manifest["model"]
    assert meta["cascade"]["gate"] == 0.9 and meta["cascade"]["model"]["context"] and "context" not in meta
    assert 0 <= result.metrics["validation_escalated"] <= 1
    snapshot_id, data = pack(result.manifest, result.arrays)
    cascade = Predictor.from_snapshot(unpack(snapshot_id, data))
    (bag_meta, bag_arrays), (context_meta, context_arrays) = models_of(result)
    bag, context = Predictor({"model": bag_meta}, bag_arrays), Predictor({"model": context_meta}, context_arrays)
    assert cascade.nbytes == bag.nbytes + context.nbytes

    texts = UTTERANCES + [e.replace("[", "").replace("]", " ") for i in example_bot.intents for e in i.examples[:3]]
    texts += ["where is order A-1234", "ship it to Germany please"]
    answers = [(text, [t.text for t in tokenize(text)]) for text in texts]
    sent = [cascade.escalates(tokens) for _, tokens in answers]
    assert any(sent) and not all(sent), "the example bot should have sure and unsure utterances"
    batched = predict_batch(cascade, texts)
    for (text, tokens), escalated, in_batch in zip(answers, sent, batched):
        own = bag.forward(tokens)[0]
        assert escalated == (own.max() < 0.9)
        expected = (context if escalated else bag).predict(text)
        got = cascade.predict(text)
        assert (got.intent, got.confidence) == (expected.intent, expected.confidence), text
        assert [e.to_dict() for e in got.entities if e.extractor == "model"] == [
            e.to_dict() for e in expected.entities if e.extractor == "model"
        ], text
        assert (in_batch.intent, in_batch.fallback) == (got.intent, got.fallback), text
        assert abs(in_batch.confidence - got.confidence) <= 1e-5

    def with_gate(gate: float) -> Predictor:
        return Predictor({**result.manifest, "model": {**meta, "cascade": {**meta["cascade"], "gate": gate}}}, result.arrays)

    never, always = with_gate(0.0), with_gate(1.0)
    for _text, tokens in answers:
        assert not never.escalates(tokens) and always.escalates(tokens)
        assert np.array_equal(never.forward(tokens)[0], bag.forward(tokens)[0])
        assert np.array_equal(always.forward(tokens)[0], context.forward(tokens)[0])

    other = {k: v for k, v in result.arrays.items() if k != CASCADE + "intent/kernel"}
    with pytest.raises(ModelError, match="intent/kernel"):
        Predictor(result.manifest, other)
    relabelled = {**meta, "cascade": {**meta["cascade"], "model": {**meta["cascade"]["model"], "labels": meta["labels"][::-1]}}}
    with pytest.raises(ModelError, match="different labels"):
        Predictor({**result.manifest, "model": relabelled}, result.arrays)
