"""The numpy runtime equals Keras on real utterances, and serving never imports TensorFlow."""

import subprocess
import sys

import numpy as np
import pytest

from botyard.models.runtime import Predictor
from botyard.training.pipeline import TrainConfig, train

UTTERANCES = [
    "where is my order?",
    "hi there",
    "Can I pay with PayPal or Klarna",
    "my parcel never arrived and I'm getting annoyed",
    "when do you open on saturdays",
    "I want to send the jacket back, it doesn't fit",
    "how much does delivery cost to austria",
    "thx a lot",
    "something completely unrelated about quantum physics",
    "ordr statsu",
]


@pytest.fixture(scope="module")
def trained(example_bot):
    return train(example_bot, TrainConfig(epochs=8, seed=3))


def test_runtime_equals_keras(trained, example_bot):
    import keras

    from botyard.models import network
    from botyard.models.featurizer import Featurizer

    model_meta = trained.manifest["model"]
    featurizer = Featurizer.from_manifest(model_meta["vocabulary"], model_meta["features"])
    model = network.build(featurizer.size, len(model_meta["labels"]), hidden=TrainConfig().hidden)
    model.get_layer("dense1").set_weights([trained.arrays["dense1/kernel"], trained.arrays["dense1/bias"]])
    model.get_layer("output").set_weights([trained.arrays["output/kernel"], trained.arrays["output/bias"]])
    texts = UTTERANCES + [i.examples[0] for i in example_bot.intents]
    keras_probs = model.predict(featurizer.dense(texts), verbose=0)
    predictor = Predictor(trained.manifest, trained.arrays)
    ours = np.stack([predictor.probabilities(t) for t in texts])
    assert ours.shape == keras_probs.shape
    assert np.max(np.abs(ours - keras_probs)) <= 1e-5
    assert isinstance(keras, object)


def test_same_data_and_seed_same_snapshot(trained, example_bot):
    from botyard.snapshots.format import pack

    again = train(example_bot, TrainConfig(epochs=8, seed=3))
    assert pack(again.manifest, again.arrays)[0] == pack(trained.manifest, trained.arrays)[0]


def test_model_learns_the_example_bot(trained):
    predictor = Predictor(trained.manifest, trained.arrays)
    assert predictor.predict("where is my order?").intent == "order_status"
    assert predictor.predict("Can I pay with PayPal").intent == "payment_methods"


def test_serving_path_never_imports_tensorflow():
    code = (
        "import sys, botyard, botyard.ops.node, botyard.ops.cli, botyard.models.runtime, botyard.snapshots;"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
