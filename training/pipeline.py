"""Train a bot definition into a snapshot: features, Keras fit, frozen arrays.

Same definition + same :class:`TrainConfig` (seed included) give the same snapshot id:
seeds are fixed, TensorFlow's op determinism is on, and nothing time-dependent enters
the snapshot's content.
"""

from __future__ import annotations

import hashlib
import os
import json
import random
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from botyard.models.definition import BotDefinition
from botyard.models.featurizer import FeatureConfig, Featurizer
from botyard.models.runtime import MODEL_KIND
from botyard.snapshots.store import SnapshotInfo, SnapshotStore
from botyard.training.errors import TrainingError

Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class TrainConfig:
    epochs: int = 30
    """Passes over the training examples."""
    batch_size: int = 16
    hidden: int = 128
    """Width of the hidden layer."""
    dropout: float = 0.25
    learning_rate: float = 0.003
    validation_share: float = 0.1
    """Share of each intent's examples held out to report validation accuracy (0 = none)."""
    seed: int = 0
    features: FeatureConfig = FeatureConfig()


@dataclass(frozen=True)
class TrainResult:
    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]
    metrics: dict[str, float]
    seconds: float


def _split(definition: BotDefinition, share: float, seed: int):
    rng = random.Random(seed)
    train, val = [], []
    for label, intent in enumerate(definition.intents):
        examples = list(intent.examples)
        rng.shuffle(examples)
        n_val = int(len(examples) * share) if len(examples) >= 5 else 0
        val += [(e, label) for e in examples[:n_val]]
        train += [(e, label) for e in examples[n_val:]]
    return train, val


def data_hash(definition: BotDefinition) -> str:
    data = [[i.name, list(i.examples)] for i in definition.intents]
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()


def train(definition: BotDefinition, config: TrainConfig = TrainConfig(), progress: Progress | None = None) -> TrainResult:
    """Fit the Keras model for ``definition`` and freeze it into snapshot content."""
    started = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter
    import keras  # noqa: PLC0415 - training is the only place Keras is imported
    import tensorflow as tf  # noqa: PLC0415

    from botyard.models import network  # noqa: PLC0415

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()

    train_set, val_set = _split(definition, config.validation_share, config.seed)
    if not train_set:
        raise TrainingError(f"{definition.key}: no training examples")
    featurizer = Featurizer.fit([t for t, _ in train_set], config.features)
    x = featurizer.dense([t for t, _ in train_set])
    y = np.array([l for _, l in train_set], np.int32)
    labels = [i.name for i in definition.intents]

    model = network.build(featurizer.size, len(labels), hidden=config.hidden, dropout=config.dropout)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    validation = None
    if val_set:
        validation = (featurizer.dense([t for t, _ in val_set]), np.array([l for _, l in val_set], np.int32))

    callbacks = [_progress_callback(keras, config.epochs, progress)] if progress else []
    history = model.fit(
        x, y,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_data=validation,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    metrics = {
        "train_accuracy": round(float(history.history["accuracy"][-1]), 6),
        "train_loss": round(float(history.history["loss"][-1]), 6),
        "train_examples": len(train_set),
        "validation_examples": len(val_set),
    }
    if val_set:
        metrics["validation_accuracy"] = round(float(history.history["val_accuracy"][-1]), 6)

    manifest = {
        "tenant": definition.tenant,
        "bot": definition.bot,
        "definition": definition.to_dict(),
        "definition_hash": definition.content_hash(),
        "data_hash": data_hash(definition),
        "model": {
            "kind": MODEL_KIND,
            "labels": labels,
            "vocabulary": featurizer.vocabulary,
            "features": config.features.to_dict(),
        },
        "training": {k: v for k, v in asdict(config).items() if k != "features"},
        "metrics": metrics,
        "framework": {"keras": keras.__version__, "tensorflow": tf.__version__},
    }
    return TrainResult(manifest, network.export_arrays(model), metrics, time.perf_counter() - started)


def train_to_store(
    definition: BotDefinition, store: SnapshotStore, config: TrainConfig = TrainConfig(), progress: Progress | None = None
) -> tuple[SnapshotInfo, TrainResult]:
    result = train(definition, config, progress)
    return store.save(result.manifest, result.arrays), result


def _progress_callback(keras, epochs: int, progress: Progress):
    """A Keras callback that reports each epoch to a plain ``progress(dict)`` function."""

    class ProgressCallback(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            progress({"epoch": epoch + 1, "epochs": epochs, **{k: float(v) for k, v in (logs or {}).items()}})

    return ProgressCallback()
