"""A tuned cascade: the bag model, and MiniLM fine-tuned on the bot's examples for the turns it is unsure of."""

import numpy as np
import pytest

from botyard.models.batch import predict_batch
from botyard.models.errors import ModelError
from botyard.models.runtime import CASCADE, Predictor, cascade_parts
from botyard.models.text import tokenize
from botyard.models.tuned import KIND, TunedModel
from botyard.snapshots.format import pack, unpack
from botyard.training.config import TrainConfig
from botyard.training.pipeline import BLENDS, train


@pytest.fixture(scope="module")
def example_bot(old_example_bot):
    """These tests train many variants of the example bot to check the runtime against Keras,
    which does not depend on the examples: they train it as it was at 1f88b70 (328 examples,
    not today's 812), which halves their time."""
    return old_example_bot


TEXTS = [
    "where is my order?", "hi there", "Can I pay with PayPal or Klarna", "ship it to Germany please",
    "how long does shipping to the Czech Republic take", "where is order A-1234", "erm what", "", "?!",
    "the thing with the box", "thx a lot", "something completely unrelated about quantum physics",
]


@pytest.fixture(scope="module")
def tuned(example_bot):
    return train(example_bot, TrainConfig(epochs=6, seed=3, tuned=True, context_epochs=2, no_final_fit=True))


def with_cascade(result, **changes) -> Predictor:
    meta = result.manifest["model"]
    return Predictor({**result.manifest, "model": {**meta, "cascade": {**meta["cascade"], **changes}}}, result.arrays)


def test_below_the_gate_the_answer_is_the_blend_of_the_two_models(tuned, example_bot):
    """Sure turns get the bag model's answer; unsure ones ``(1 - w) * bag + w * tuned`` with the
    weight chosen on the held-out examples, one utterance or a batch, from a stored snapshot."""
    meta = tuned.manifest["model"]
    assert meta["cascade"]["model"]["kind"] == KIND and meta["cascade"]["blend"] in BLENDS
    assert meta["cascade"]["gate"] == 0.9 and "train_loss_tuned" in tuned.metrics
    assert 0 < tuned.metrics["validation_accuracy_tuned"] <= 1
    snapshot_id, data = pack(tuned.manifest, tuned.arrays)
    cascade = Predictor.from_snapshot(unpack(snapshot_id, data))
    (bag_meta, bag_arrays), (tuned_meta, tuned_arrays) = cascade_parts(meta, tuned.arrays)
    bag, second = Predictor({"model": bag_meta}, bag_arrays), TunedModel(tuned_meta, tuned_arrays)
    assert isinstance(cascade.fallback, TunedModel) and cascade.nbytes == bag.nbytes + second.nbytes
    w = np.float32(meta["cascade"]["blend"])
    texts = TEXTS + [e.replace("[", "").replace("]", " ") for i in example_bot.intents for e in i.examples[:2]]
    sent = 0
    for text in texts:
        tokens = [t.text for t in tokenize(text)]
        (own, own_tags), (theirs, their_tags) = bag.forward(tokens), second.forward(tokens)
        intent, tags = cascade.forward(tokens)
        if cascade.escalates(tokens):
            sent += 1
            assert np.allclose(intent, (1 - w) * own + w * theirs, atol=1e-6), text
            if tokens:
                assert np.allclose(tags, (1 - w) * own_tags + w * their_tags, atol=1e-6), text
        else:
            assert np.array_equal(intent, own), text
    assert 0 < sent < len(texts), "the example bot should have sure and unsure utterances"
    for text, in_batch in zip(texts, predict_batch(cascade, texts)):
        alone = cascade.predict(text)
        assert (in_batch.intent, in_batch.fallback, in_batch.entities) == (alone.intent, alone.fallback, alone.entities)
        assert abs(in_batch.confidence - alone.confidence) <= 1e-6

    only_bag, only_tuned = with_cascade(tuned, gate=1.0, blend=0.0), with_cascade(tuned, gate=1.0, blend=1.0)
    for text in texts:
        tokens = [t.text for t in tokenize(text)]
        assert np.array_equal(only_bag.forward(tokens)[0], bag.forward(tokens)[0])
        assert np.array_equal(only_tuned.forward(tokens)[0], second.forward(tokens)[0])


def test_primed_outputs_equal_those_computed_alone(tuned):
    """Utterances computed together over the cores give what each gives alone, bit for bit."""
    (_, _), (meta, arrays) = cascade_parts(tuned.manifest["model"], tuned.arrays)
    utterances = [[t.text for t in tokenize(text)] for text in TEXTS]
    alone = [TunedModel(meta, arrays).forward(u) for u in utterances]
    primed = TunedModel(meta, arrays)
    assert primed.prime(utterances) == len({tuple(u) for u in utterances})
    assert primed.prime(utterances) == 0  # all cached
    for u, (intent, tags) in zip(utterances, alone):
        got_intent, got_tags = primed.forward(u)
        assert np.array_equal(got_intent, intent)
        assert (got_tags is None and tags is None) or np.array_equal(got_tags, tags)


def test_a_tuned_snapshot_that_does_not_fit_is_a_model_error(tuned):
    meta = tuned.manifest["model"]
    lacking = {k: v for k, v in tuned.arrays.items() if k != CASCADE + "layer3/up/kernel"}
    with pytest.raises(ModelError, match="layer3/up/kernel"):
        Predictor(tuned.manifest, lacking)
    cut = {**tuned.arrays, CASCADE + "layer0/qkv/kernel": tuned.arrays[CASCADE + "layer0/qkv/kernel"][:, :10]}
    with pytest.raises(ModelError, match="do not match the encoder"):
        Predictor(tuned.manifest, cut)
    other = {**meta["cascade"]["model"], "encoder": {**meta["cascade"]["model"]["encoder"], "sha256": "0" * 64}}
    with pytest.raises(ModelError, match="needs encoder weights"):
        with_cascade(tuned, model=other)
    relabelled = {**meta["cascade"]["model"], "labels": meta["labels"][::-1]}
    with pytest.raises(ModelError, match="different labels"):
        with_cascade(tuned, model=relabelled)


def test_without_the_encoder_a_cascade_is_refused_before_any_training(example_bot, monkeypatch, tmp_path):
    from botyard.training.errors import TrainingError

    monkeypatch.setenv("BOTYARD_VECTORS", str(tmp_path))  # a directory without the encoder's files
    progress = []
    for config in (TrainConfig(tuned=True), TrainConfig(cascade=True)):
        with pytest.raises(TrainingError, match="needs the sentence encoder; install them"):
            train(example_bot, config, progress.append)
    assert progress == []  # refused before the bag model's first epoch


def test_a_model_tuning_its_top_layers_stores_only_those(example_bot, tuned):
    """``tuned_layers=2``: the snapshot holds layers 4 and 5 and the heads; the four below are the
    installed encoder's own (shared, not copied), and a node answers from the stored snapshot."""
    from botyard.models.encoder import available

    top = train(example_bot, TrainConfig(epochs=6, seed=3, tuned=True, context_epochs=2, tuned_layers=2, no_final_fit=True))
    meta = top.manifest["model"]["cascade"]["model"]
    assert meta["frozen"] == 4 and tuned.manifest["model"]["cascade"]["model"]["frozen"] == 0
    stored = {k.split("/")[1] for k in top.arrays if k.startswith(CASCADE + "layer")}
    assert stored == {"layer4", "layer5"}
    snapshot_id, data = pack(top.manifest, top.arrays)
    cascade = Predictor.from_snapshot(unpack(snapshot_id, data))
    shared = available()
    assert all(mine is theirs for mine, theirs in zip(cascade.fallback.layers[:4], shared.layers[:4]))
    assert not any(np.array_equal(mine[0], theirs[0]) for mine, theirs in zip(cascade.fallback.layers[4:], shared.layers[4:]))
    full = Predictor(tuned.manifest, tuned.arrays)
    assert cascade.fallback.nbytes < full.fallback.nbytes - 4 * 6_000_000  # about 7 MB per layer not stored
    assert len(data) < len(pack(tuned.manifest, tuned.arrays)[1]) - 4 * 6_000_000
    for text in TEXTS:
        assert cascade.predict(text).intent == Predictor(top.manifest, top.arrays).predict(text).intent

    _, (tuned_meta, tuned_arrays) = cascade_parts(top.manifest["model"], top.arrays)
    for frozen in (6, -1, "4", 4.0):
        with pytest.raises(ModelError, match="frozen layers must be an integer"):
            TunedModel({**tuned_meta, "frozen": frozen}, tuned_arrays)
    with pytest.raises(ModelError, match="layer3/qkv/kernel"):
        TunedModel({**tuned_meta, "frozen": 3}, tuned_arrays)


@pytest.mark.parametrize("layers", [0, 7, 2.5])
def test_tuning_no_layers_or_more_than_the_encoder_has_is_refused_before_training(example_bot, layers):
    from botyard.training.errors import TrainingError

    progress = []
    with pytest.raises(TrainingError, match="fine-tunes 1 to 6 layers"):
        train(example_bot, TrainConfig(tuned=True, tuned_layers=layers), progress.append)
    assert progress == []
