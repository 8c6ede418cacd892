"""The Keras architecture (training only; serving runs :mod:`botyard.models.runtime`).

``features -> dropout -> Dense(hidden, relu) -> dropout -> Dense(labels, softmax)``:
a bag-of-n-grams MLP, the fastText family. Importing this module imports Keras.
"""

from __future__ import annotations

import keras
import numpy as np


def build(input_dim: int, n_labels: int, *, hidden: int = 128, dropout: float = 0.25) -> keras.Model:
    inputs = keras.Input((input_dim,), name="features")
    x = keras.layers.Dropout(dropout)(inputs)
    x = keras.layers.Dense(hidden, activation="relu", name="dense1")(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(n_labels, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="bag_mlp")


def export_arrays(model: keras.Model) -> dict[str, np.ndarray]:
    """The weights the numpy runtime needs, by the names it expects."""
    out = {}
    for layer in ("dense1", "output"):
        kernel, bias = model.get_layer(layer).get_weights()
        out[f"{layer}/kernel"] = kernel.astype(np.float32)
        out[f"{layer}/bias"] = bias.astype(np.float32)
    return out
