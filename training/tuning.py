"""Fine-tune the shared MiniLM on a bot's examples: a cascade's second model (``--tuned``).

The top ``TrainConfig.tuned_layers`` layers start from the installed encoder's weights and
learn at a small rate (AdamW, 1e-4, weight decay 0.01), the two heads at a larger one
(Adam, 1e-3), both decaying linearly to zero; dropout 0.1; loss: intent cross-entropy plus
the tags' mean cross-entropy per token. The frozen part (the embeddings and the layers
below the tuned ones) is computed once per example before the first epoch and kept (about
1.5 KB per piece; with all six layers tuned only the embeddings, looked up per batch), so
each update runs and differentiates the tuned layers only. Batches are bucketed by length (fewer
padded pieces) and shuffled. With Horovod each worker takes its share of every batch and
the gradients are averaged, as in :mod:`botyard.training.pipeline`.

Minutes on 2 cores (SNIPS, 13,084 examples: about 10 with all six layers), against seconds
for the bag model; it is opt-in.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from botyard.models import encoder as sentence_encoder
from botyard.models import vectors as word_vectors
from botyard.models.encoder import LAYERS
from botyard.models.tuned import KIND
from botyard.training.dataset import Dataset, Example
from botyard.training.errors import TrainingError
from botyard.training.progress import encoding_progress

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

    from botyard.training.tuned_network import TunedEncoder, padded  # noqa: PLC0415

    encoder = sentence_encoder.available()
    if encoder is None:
        raise TrainingError(f"fine-tuning needs the sentence encoder; {word_vectors.INSTALL_HINT}")
    frozen = LAYERS - config.tuned_layers
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

    model = TunedEncoder(encoder, len(dataset.labels), len(dataset.tags), seed=config.seed, frozen=frozen)
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

    matrix, floats = tf.TensorSpec([None, None], "int32"), tf.TensorSpec([None, None], "float32")
    signature = [tf.TensorSpec([None, None, encoder.dim], "float32"), floats, matrix, floats,
                 matrix, tf.TensorSpec([None], "int32")]

    @tf.function(input_signature=[matrix, floats])
    def below(ids, mask):
        return model.below(ids, mask)

    def frozen_part(examples: list[tuple], report) -> list[np.ndarray]:
        """Each row's frozen part's output ``[pieces, dim]``, computed in batches of similar length."""
        out: list[np.ndarray] = [np.empty(0)] * len(examples)
        order = np.argsort([len(r[0]) for r in examples], kind="stable")
        for start in range(0, len(order), 64):
            chunk = order[start : start + 64]
            inputs = padded([examples[i][:2] for i in chunk])
            hidden = below(inputs["ids"], inputs["mask"]).numpy()
            for j, i in enumerate(chunk):
                out[i] = hidden[j, : len(examples[i][0])]
            if report:
                report(min(start + 64, len(order)), len(order))
        return out

    # Kept for every example (about 1.5 KB per piece); with all six layers tuned the frozen part is
    # only the embeddings, looked up per batch instead.
    kept = (frozen_part(rows, encoding_progress(progress, rank)), frozen_part(val_rows, None)) if frozen else None

    def states_of(which: int, idx: Sequence[int]) -> list[np.ndarray]:
        """The frozen part's outputs of training (0) or validation (1) rows ``idx``."""
        if kept is not None:
            return [kept[which][i] for i in idx]
        source = (rows, val_rows)[which]
        return frozen_part([source[i] for i in idx], None)

    @tf.function(input_signature=signature)
    def step(x, mask, first, word_mask, tags, labels):
        with tf.GradientTape() as tape:
            intent, tag = model.above(x, mask, first, training=True)
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
    def infer(x, mask, first):
        intent, _ = model.above(x, mask, first)
        return tf.argmax(intent, axis=1, output_type=tf.int32)

    def val_accuracy() -> float:
        correct = 0
        for start in range(0, len(val_rows), 64):
            chunk = range(start, min(start + 64, len(val_rows)))
            x, mask, first, *_, labels = _padded([val_rows[i] for i in chunk], states_of(1, chunk))
            correct += int((infer(x, mask, first).numpy() == labels).sum())
        return correct / len(val_rows)

    rng = np.random.default_rng(config.seed)
    history: list[dict[str, float]] = []
    done = 0
    for epoch in range(epochs):
        total = 0.0
        for batch in _batches(rows, BATCH, rng):
            share = batch[rank::size][:per_worker] if size > 1 else batch
            share = share if len(share) else batch[:1]
            total += float(step(*_padded([rows[i] for i in share], states_of(0, share))))
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
        "frozen": frozen,
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


def _padded(batch: Sequence[tuple], states: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """(frozen part's output, mask, first, word mask, tags, labels) of rows (piece ids, first
    pieces, label, tag ids) and their frozen part's outputs, padded."""
    from botyard.training.tuned_network import padded  # noqa: PLC0415 - imports Keras

    inputs = padded([r[:2] for r in batch])
    x = np.zeros((*inputs["mask"].shape, states[0].shape[1]), np.float32)
    word_mask = np.zeros(inputs["first"].shape, np.float32)
    tags, labels = np.zeros(inputs["first"].shape, np.int32), np.zeros(len(batch), np.int32)
    for r, ((_, firsts, label, tag_ids), state) in enumerate(zip(batch, states)):
        x[r, : len(state)] = state
        word_mask[r, : len(firsts)], tags[r, : len(tag_ids)], labels[r] = 1.0, tag_ids, label
    return x, inputs["mask"], inputs["first"], word_mask, tags, labels
