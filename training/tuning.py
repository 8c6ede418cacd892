"""Fine-tune the shared MiniLM on a bot's examples: a cascade's second model (``--tuned``).

The six layers start from the installed encoder's weights and learn at a small rate
(AdamW, 1e-4, weight decay 0.01), the two heads at a larger one (Adam, 1e-3), both
decaying linearly to zero; dropout 0.1; loss: intent cross-entropy plus the tags' mean
cross-entropy per token. Batches are bucketed by length (fewer padded pieces) and
shuffled. With Horovod each worker takes its share of every batch and the gradients are
averaged, as in :mod:`botyard.training.pipeline`.

On SNIPS (13,084 examples, 5 epochs) this takes about 20 minutes on 2 cores, against a
few seconds for the bag model; it is opt-in.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from botyard.models import encoder as sentence_encoder
from botyard.models import vectors as word_vectors
from botyard.models.tuned import KIND
from botyard.training.dataset import Dataset, Example
from botyard.training.errors import TrainingError

BODY_RATE, HEAD_RATE, WEIGHT_DECAY = 1e-4, 1e-3, 0.01
BATCH = 32
"""Examples per update over all workers together, whatever ``TrainConfig.batch_size`` says (the
rates above were measured with it: ``bench/accuracy.py --data snips+tuned``)."""
EPOCHS = 5
"""Default passes over the examples (``TrainConfig.context_epochs`` overrides)."""
MIN_STEPS = 100
"""At least this many updates however few the examples: a small bot passes over them more often."""
REPORT_EVERY = 50
"""Updates between ``{"stage": "tuning"}`` progress records."""


def epochs_for(examples: int, epochs: int = 0) -> int:
    """Passes over ``examples``: ``epochs`` if given, else :data:`EPOCHS`, or more for a small bot
    (:data:`MIN_STEPS`)."""
    return epochs or max(EPOCHS, math.ceil(MIN_STEPS / max(1, math.ceil(examples / BATCH))))


def fit_tuned(
    dataset: Dataset, train_set: Sequence[Example], val_set: Sequence[Example], config,
    progress: Callable[[dict[str, Any]], None] | None = None, *, hvd=None,
) -> tuple[dict[str, Any], dict[str, np.ndarray], list[dict[str, float]]]:
    """Train on ``train_set`` (its intent accuracy on ``val_set`` in each epoch's progress record);
    returns the model manifest, its arrays and the per-epoch history."""
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from botyard.models.tuned_network import TunedEncoder  # noqa: PLC0415

    encoder = sentence_encoder.available()
    if encoder is None:
        raise TrainingError(f"fine-tuning needs the sentence encoder; {word_vectors.INSTALL_HINT}")
    rank, size = (hvd.rank(), hvd.size()) if hvd else (0, 1)
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    label_index = {name: i for i, name in enumerate(dataset.labels)}
    tag_index = {name: i for i, name in enumerate(dataset.tags)}
    has_tags = len(dataset.tags) > 1

    def rows_of(examples: Sequence[Example]) -> list[tuple]:
        return [(*encoder.first_pieces(e.tokens), label_index[e.intent], [tag_index.get(t, 0) for t in e.tags])
                for e in examples]

    rows, val_rows = rows_of(train_set), rows_of(val_set)

    model = TunedEncoder(encoder, len(dataset.labels), len(dataset.tags), seed=config.seed)
    per_worker = max(1, BATCH // size)
    steps = max(1, math.ceil(len(rows) / BATCH))
    epochs = epochs_for(len(rows), config.context_epochs)
    decay = keras.optimizers.schedules.PolynomialDecay
    body_opt = keras.optimizers.AdamW(decay(BODY_RATE, steps * epochs, 0.0), weight_decay=WEIGHT_DECAY)
    head_opt = keras.optimizers.Adam(decay(HEAD_RATE, steps * epochs, 0.0))
    body = [v for layer in model.body for v in layer]
    heads = model.heads
    body_opt.build(body)
    head_opt.build(heads)
    if hvd:
        for i, v in enumerate(model.variables):
            v.assign(hvd.broadcast(v.value, root_rank=0, name=f"tuned.init.{i}"))
        keras.utils.set_random_seed(config.seed + rank)  # different dropout masks per worker

    matrix = tf.TensorSpec([None, None], "int32")
    signature = [matrix, tf.TensorSpec([None, None], "float32"), matrix, tf.TensorSpec([None, None], "float32"),
                 matrix, tf.TensorSpec([None], "int32")]

    @tf.function(input_signature=signature)
    def step(ids, mask, first, word_mask, tags, labels):
        with tf.GradientTape() as tape:
            intent, tag = model.logits({"ids": ids, "mask": mask, "first": first}, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, intent))
            if has_tags:
                per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(tags, tag)
                loss += tf.reduce_sum(per_token * word_mask) / tf.maximum(tf.reduce_sum(word_mask), 1.0)
        grads = tape.gradient(loss, body + heads)
        if hvd:
            grads = [hvd.allreduce(g, op=hvd.Average, name=f"tuned.grad.{i}") for i, g in enumerate(grads)]
        body_opt.apply_gradients(zip(grads[: len(body)], body))
        head_opt.apply_gradients(zip(grads[len(body) :], heads))
        return loss

    @tf.function(input_signature=signature[:3])
    def infer(ids, mask, first):
        intent, _ = model.logits({"ids": ids, "mask": mask, "first": first})
        return tf.argmax(intent, axis=1, output_type=tf.int32)

    def val_accuracy() -> float:
        correct = 0
        for start in range(0, len(val_rows), 64):
            ids, mask, first, *_, labels = _padded(val_rows[start : start + 64])
            correct += int((infer(ids, mask, first).numpy() == labels).sum())
        return correct / len(val_rows)

    rng = np.random.default_rng(config.seed)
    history: list[dict[str, float]] = []
    done = 0
    for epoch in range(epochs):
        total = 0.0
        for batch in _batches(rows, BATCH, rng):
            share = batch[rank::size][:per_worker] if size > 1 else batch
            total += float(step(*_padded([rows[i] for i in (share if len(share) else batch[:1])])))
            done += 1
            if progress and rank == 0 and done % REPORT_EVERY == 0:
                progress({"stage": "tuning", "done": done, "total": steps * epochs})
        record = {"epoch": epoch + 1, "epochs": epochs, "loss": total / steps}
        if val_rows and rank == 0 and (progress or epoch + 1 == epochs):
            record["val_accuracy"] = val_accuracy()
        history.append(record)
        if progress and rank == 0:
            progress(record)

    manifest = {
        "kind": KIND,
        "labels": list(dataset.labels),
        "tags": list(dataset.tags) if has_tags else [],
        "encoder": encoder.reference(),
    }
    return manifest, model.export_arrays(), history


def _batches(rows: Sequence[tuple], size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of row indices, each of rows of similar length (sorted within chunks of 50 batches)."""
    order = rng.permutation(len(rows))
    chunks = [order[i : i + size * 50] for i in range(0, len(order), size * 50)]
    order = np.concatenate([c[np.argsort([len(rows[j][0]) for j in c], kind="stable")] for c in chunks])
    groups = [order[i : i + size] for i in range(0, len(order), size)]
    rng.shuffle(groups)
    return groups


def _padded(batch: Sequence[tuple]) -> tuple[np.ndarray, ...]:
    """(ids, mask, first, word mask, tags, labels) of rows (piece ids, first pieces, label, tag ids), padded."""
    from botyard.models.tuned_network import padded  # noqa: PLC0415 - imports Keras

    inputs = padded([r[:2] for r in batch])
    word_mask = np.zeros(inputs["first"].shape, np.float32)
    tags, labels = np.zeros(inputs["first"].shape, np.int32), np.zeros(len(batch), np.int32)
    for r, (_, firsts, label, tag_ids) in enumerate(batch):
        word_mask[r, : len(firsts)], tags[r, : len(tag_ids)], labels[r] = 1.0, tag_ids, label
    return inputs["ids"], inputs["mask"], inputs["first"], word_mask, tags, labels
