"""The numpy runtime equals Keras on every architecture, and serving never imports TensorFlow."""

import subprocess
import sys

import numpy as np
import pytest

from botyard.models.runtime import Predictor
from botyard.models.text import tokenize
from botyard.training.pipeline import TrainConfig, train

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
    for intent in data["intents"]:
        intent["examples"] = [e.replace("](country)", "](product)") for e in intent["examples"]]
    return type(example_bot).from_dict(data)


@pytest.fixture(scope="module", params=["joint", "intents-only", "intents-pooled", "joint-pooled"])
def trained(request, example_bot):
    bot = intents_only(example_bot) if request.param.startswith("intents") else example_bot
    return train(bot, TrainConfig(epochs=6, seed=3, pool=request.param.endswith("pooled")))


def test_runtime_equals_keras(trained, example_bot):
    import tensorflow as tf

    from botyard.models import network
    from botyard.models.featurizer import Featurizer

    meta = trained.manifest["model"]
    model = network.from_arrays(meta, trained.arrays)
    featurizer = Featurizer.from_arrays(trained.arrays["vocabulary"], trained.arrays["idf"], trained.arrays["families"], meta["features"])
    predictor = Predictor(trained.manifest, trained.arrays)
    texts = UTTERANCES + [i.examples[0] for i in example_bot.intents]
    worst = 0.0
    for text in texts:
        tokens = [t.text for t in tokenize(text)]
        keras_out = model.predict(tf.data.Dataset.from_tensors(featurizer.batch([tokens])), verbose=0)
        intent, tags = predictor.forward(tokens)
        assert intent.shape == keras_out["intent"][0].shape
        worst = max(worst, float(np.abs(intent - keras_out["intent"][0]).max()))
        if meta["tags"] and tokens:
            assert tags.shape == keras_out["tags"][0].shape
            worst = max(worst, float(np.abs(tags - keras_out["tags"][0]).max()))
        else:
            assert tags is None
    assert worst <= 1e-5


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


def test_same_data_and_seed_same_snapshot(trained, example_bot):
    from botyard.snapshots.format import pack

    bot = type(example_bot).from_dict(trained.manifest["definition"])
    again = train(bot, TrainConfig(epochs=6, seed=3, pool=trained.manifest["model"]["shape"]["pool"]))
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
