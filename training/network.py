"""The Keras architecture (training only; serving runs :mod:`botyard.models.runtime`).

One embedding table over the hashed feature vocabulary feeds two heads::

    sentence bag --sum w*E--> Dense(relu) --> Dense(softmax)            intent
    token bags   --sum w*E--> Conv1D(relu) x2 --+ sentence --> Dense(softmax)  BIO tag per token

The intent head is a fastText-style bag-of-n-grams MLP; the tag head sees each token's
word, character n-grams and shape, its neighbours through two width-3 convolutions,
and the sentence vector. Both are sums of a few rows and small matrix products, so the
numpy runtime serves one utterance in tens of microseconds. Importing this module
imports Keras.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

KIND = "joint-bag-cnn"


@dataclass(frozen=True, slots=True)
class Shape:
    vocabulary: int
    """Embedding rows, padding row 0 included."""
    intents: int
    tags: int
    """BIO tags incl. ``O``; 0 or 1 means the bot has no learned entities (no tag head)."""
    embed: int = 128
    hidden: int = 256
    conv: int = 128
    kernel: int = 3
    conv_layers: int = 2
    dropout: float = 0.3
    pool: bool = False
    """The intent head also sees the convolutions' max over tokens (phrases in context)."""
    vectors: int = 0
    """Width of the shared pretrained word vectors fed next to the bags (0: none)."""
    vector_proj: int = 0
    """Project the word vectors to this width first (a linear layer shared by both heads; 0: feed them as they are)."""
    skip: bool = False
    """The intent head also sees the utterance's vector itself (unprojected), next to the sentence layer."""


class Bags(keras.layers.Layer):
    """Weighted sums of embedding rows: ``out[seg] += w * E[id]`` (an embedding bag).

    Inputs are flat (one entry per feature occurrence, no padding), so a batch costs
    its real number of features and the gradient touches only those rows.
    """

    def __init__(self, rows: int, width: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rows, self.width = rows, width

    def build(self, input_shape) -> None:
        self.embeddings = self.add_weight(
            shape=(self.rows, self.width), initializer="uniform", name="embeddings"
        )

    def call(self, ids, weights, segments, mask, per_token=False):
        """One bag per utterance (``per_token=False``) or per token slot of ``mask`` ([batch, tokens])."""
        import tensorflow as tf  # noqa: PLC0415 - segment sums have no keras.ops equivalent with a dynamic count

        shape = tf.shape(mask)
        rows = tf.gather(self.embeddings, ids) * tf.expand_dims(weights, -1)
        if not per_token:
            return tf.math.unsorted_segment_sum(rows, segments, shape[0])
        out = tf.math.unsorted_segment_sum(rows, segments, shape[0] * shape[1])
        return tf.reshape(out, (shape[0], shape[1], self.width))


def build(shape: Shape) -> keras.Model:
    """Inputs: flat ``sent_*`` / ``tok_*`` feature lists and a ``[batch, tokens]`` ``tok_mask``."""
    if shape.kernel % 2 != 1:
        raise ValueError("the convolution width must be odd")
    names = ("sent_ids", "sent_w", "sent_seg", "tok_ids", "tok_w", "tok_seg")
    flat = {n: keras.Input((), dtype="float32" if n.endswith("_w") else "int32", name=n) for n in names}
    tok_mask = keras.Input((None,), dtype="float32", name="tok_mask")
    inputs = {**flat, "tok_mask": tok_mask}
    embed = Bags(shape.vocabulary, shape.embed, name="embed")
    per_token = shape.tags > 1 or shape.pool

    bag = embed(flat["sent_ids"], flat["sent_w"], flat["sent_seg"], tok_mask)
    project = (lambda v: v)
    if shape.vectors and shape.vector_proj:
        project = keras.layers.Dense(shape.vector_proj, use_bias=False, name="vectors")
    if shape.vectors:  # [bag, vec] @ W: the runtime splits W by rows
        inputs["vec"] = keras.Input((shape.vectors,), dtype="float32", name="vec")
        bag = ops.concatenate([bag, project(inputs["vec"])], axis=-1)
    bag = keras.layers.Dropout(shape.dropout)(bag)
    sentence = keras.layers.Dense(shape.hidden, activation="relu", name="sentence")(bag)
    intent_in = sentence
    if per_token:
        mask = ops.expand_dims(tok_mask, -1)
        tokens = embed(flat["tok_ids"], flat["tok_w"], flat["tok_seg"], tok_mask, per_token=True)
        if shape.vectors:
            inputs["tok_vec"] = keras.Input((None, shape.vectors), dtype="float32", name="tok_vec")
            tokens = ops.concatenate([tokens, project(inputs["tok_vec"])], axis=-1)
        x = keras.layers.Dropout(shape.dropout)(tokens)
        for name in (f"conv{i + 1}" for i in range(shape.conv_layers)):
            x = keras.layers.Conv1D(shape.conv, shape.kernel, padding="same", activation="relu", name=name)(x) * mask
        if shape.pool:  # relu outputs are >= 0 and padding is 0, so the max is over real tokens
            intent_in = ops.concatenate([sentence, ops.max(x, axis=1)], axis=-1)
    if shape.skip and shape.vectors:  # [sentence, pooled?, vec] @ W: the runtime splits W by rows
        intent_in = ops.concatenate([intent_in, inputs["vec"]], axis=-1)
    intent = keras.layers.Dense(shape.intents, activation="softmax", name="intent")(
        keras.layers.Dropout(shape.dropout)(intent_in)
    )
    outputs = {"intent": intent}
    if shape.tags > 1:
        context = ops.expand_dims(sentence, 1) * mask
        x = ops.concatenate([x, context], axis=-1)
        outputs["tags"] = keras.layers.Dense(shape.tags, activation="softmax", name="tags")(
            keras.layers.Dropout(shape.dropout)(x)
        )
    return keras.Model(inputs, outputs, name="joint_bag_cnn")


LAYERS = ("sentence", "intent", "conv1", "conv2", "conv3", "conv4", "tags")


def export_arrays(model: keras.Model) -> dict[str, np.ndarray]:
    """The weights the numpy runtime needs, by the names it expects."""
    out = {"embed": np.asarray(model.get_layer("embed").get_weights()[0], np.float32)}
    names = {layer.name for layer in model.layers}
    if "vectors" in names:
        out["vectors/kernel"] = np.asarray(model.get_layer("vectors").get_weights()[0], np.float32)

    for name in LAYERS:
        if name in names:
            kernel, bias = model.get_layer(name).get_weights()
            out[f"{name}/kernel"] = np.asarray(kernel, np.float32)
            out[f"{name}/bias"] = np.asarray(bias, np.float32)
    return out


def from_arrays(model_manifest: dict, arrays: dict[str, np.ndarray]) -> keras.Model:
    """A Keras model holding a snapshot's weights (to compare the runtime with Keras)."""
    model = build(Shape(**model_manifest["shape"]))
    model.get_layer("embed").set_weights([np.asarray(arrays["embed"], np.float32)])
    if "vectors/kernel" in arrays:
        model.get_layer("vectors").set_weights([arrays["vectors/kernel"]])
    for name in LAYERS:
        if f"{name}/kernel" in arrays:
            model.get_layer(name).set_weights([arrays[f"{name}/kernel"], arrays[f"{name}/bias"]])
    return model
