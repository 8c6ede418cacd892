"""Train examples into snapshot content: features, a Keras fit, frozen arrays, a threshold.

One custom training step serves one process and N Horovod workers alike: with
Horovod each worker takes its share of every batch and the gradients are averaged
with ``hvd.allreduce`` before the update (Keras 3 variables do not work with
``hvd.DistributedGradientTape``), after rank 0's initial weights are broadcast.

Same data + same :class:`TrainConfig` (seed included) give the same snapshot id in
one process: seeds are fixed, TensorFlow's op determinism is on, and nothing
time-dependent enters the snapshot's content.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

import numpy as np

from botyard.dialogue.spec import parse_dialogue
from botyard.models import encoder as sentence_encoder
from botyard.models import korean
from botyard.models import scope as in_scope
from botyard.models import vectors as word_vectors
from botyard.models.decoding import tag_prior
from botyard.models.definition import OUT_OF_SCOPE, BotDefinition
from botyard.models.featurizer import Featurizer, collate
from botyard.models.runtime import CASCADE, MODEL_KIND, Predictor
from botyard.snapshots.store import SnapshotInfo, SnapshotStore, latest
from botyard.training.calibration import calibrate, calibrate_score, calibration_of, evaluate, held_out_metrics
from botyard.training.config import TrainConfig
from botyard.training.dataset import Dataset, Example, data_hash, folds, from_definition
from botyard.training.errors import TrainingError
from botyard.training.language import for_language
from botyard.training.progress import Progress, encoding_progress, labelled

NO_TOKENS = (np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64), 0)
"""Token bags of a model without a tag head: none."""


@dataclass(frozen=True)
class TrainResult:
    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]
    metrics: dict[str, Any]
    seconds: float
    scored: tuple = ()
    """The held-out answers, :class:`Scored` each (what calibration reads)."""
    counts: tuple = ()
    """Held-out ``(correct, entity true positives, predicted spans, gold spans, examples)``."""


def train(
    definition: BotDefinition, config: TrainConfig = TrainConfig(), progress: Progress | None = None, *, hvd=None
) -> TrainResult:
    """Fit the model for a bot file and freeze it into snapshot content."""
    parse_dialogue(definition)  # every problem of the dialogue section, before any training
    config = for_language(definition.language, config)  # a tier that cannot read it is refused here
    dataset = from_definition(definition)
    result = train_dataset(dataset, config, progress, hvd=hvd)
    explicit = definition.fallback.threshold
    if explicit is not None:  # the bot file's threshold is the snapshot's; calibration's choice is only a figure
        result.metrics["calibrated_threshold"] = result.manifest["model"]["threshold"]
        result.manifest["model"]["threshold"] = explicit
    result.manifest.update(
        tenant=definition.tenant,
        bot=definition.bot,
        definition=definition.to_dict(),
        definition_hash=definition.content_hash(),
    )
    return result


def train_to_store(
    definition: BotDefinition,
    store: SnapshotStore,
    config: TrainConfig = TrainConfig(),
    progress: Progress | None = None,
    *,
    parent: str | None = None,
) -> tuple[SnapshotInfo, TrainResult]:
    """Train and save. ``parent`` (default: the bot's newest snapshot) goes into the manifest."""
    result = train(definition, config, progress)
    return save_result(definition, store, result, parent=parent), result


def save_result(
    definition: BotDefinition, store: SnapshotStore, result: TrainResult, *, parent: str | None = None
) -> SnapshotInfo:
    """Add provenance (creation time, parent) to a training result and store it."""
    if parent is None:
        newest = latest(store, definition.tenant, definition.bot)
        parent = newest.id if newest else None
    result.manifest.update(created_at=time.time(), parent=parent)
    return store.save(result.manifest, result.arrays)


def train_dataset(dataset: Dataset, config: TrainConfig = TrainConfig(), progress: Progress | None = None, *,
                  hvd=None) -> TrainResult:
    """Calibrate on held-out folds, then fit on every example (:func:`train` without a bot file).

    ``config.folds_for`` models are trained, each without one fold of the examples; their
    answers to the examples they did not see, all together, choose the thresholds (in-scope
    score and confidence; :func:`calibrate_score`, :func:`calibrate`, each drawn towards a
    prior when there is little to go on) and give the held-out figures. Then, unless
    ``no_final_fit``, one more model is trained on every example: the snapshot's. With one fold
    and ``no_final_fit`` this is the training of before issue 26 (a held-out tenth, one model).
    """
    started = time.perf_counter()
    k = config.folds_for(len(dataset.examples))
    pairs = folds(dataset, k, config.seed, config.validation_share)
    final = not config.no_final_fit
    fitted: list[TrainResult] = []
    for i, (train_set, val_set) in enumerate(pairs):
        fold_progress = progress if k == 1 and not final else _fold_progress(progress, i + 1, k)
        fitted.append(fit(dataset, train_set, val_set, config, fold_progress, hvd=hvd))
    scored = [s for r in fitted for s in r.scored]
    calibration = calibration_of(fitted, config, k, final)
    if final:
        cascade = fitted[0].manifest["model"].get("cascade") or {}
        result = fit(dataset, list(dataset.examples), [], config, progress, hvd=hvd, blend=cascade.get("blend"))
    else:
        result = fitted[0]
    model = result.manifest["model"]
    model["threshold"] = calibration["confidence"]["threshold"]
    if model.get("scope"):
        model["scope"]["threshold"] = calibration["score"]["threshold"]
    model["calibration"] = calibration
    metrics = {k_: v for k_, v in result.metrics.items() if not k_.startswith("validation")}
    metrics.update(held_out_metrics(fitted))
    if scored and model.get("scope"):
        t = calibration["score"]["threshold"]
        oos = [s for s in scored if s.out_of_scope]
        if oos:  # the bot's own out-of-scope examples that fall back, out of its class or under the threshold
            metrics["validation_out_of_scope_recall"] = round(sum(
                s.predicted_out_of_scope or not s.knows_a_word or (s.score is not None and s.score < t) for s in oos
            ) / len(oos), 6)
    result.manifest["metrics"] = metrics
    return TrainResult(result.manifest, result.arrays, metrics, time.perf_counter() - started, tuple(scored))


def fits_for(config: TrainConfig, examples: int) -> int:
    """How many models :func:`train_dataset` trains for a bot of ``examples`` examples."""
    k = config.folds_for(examples)
    return k + (0 if config.no_final_fit else 1)


def _fold_progress(progress: Progress | None, fold: int, folds: int) -> Progress | None:
    """Progress records of a calibration fold's training, marked ``fold``/``folds``."""
    return None if progress is None else (lambda record: progress({**record, "fold": fold, "folds": folds}))


def fit(
    dataset: Dataset,
    train_set: Sequence[Example],
    val_set: Sequence[Example],
    config: TrainConfig = TrainConfig(),
    progress: Progress | None = None,
    *,
    hvd=None,
    blend: float | None = None,
) -> TrainResult:
    """Train on ``train_set``; calibrate and report on ``val_set`` (one held-out set: :func:`train_dataset`
    calibrates on folds). Returns the model part of a manifest. ``blend``: a tuned cascade's blend
    weight, when not chosen on ``val_set``."""
    if config.is_cascade:
        return _fit_cascade(dataset, train_set, val_set, config, progress, hvd=hvd, blend=blend)
    return _fit_model(dataset, train_set, val_set, config, progress, hvd=hvd)


def _fit_cascade(dataset: Dataset, train_set: Sequence[Example], val_set: Sequence[Example], config: TrainConfig,
                 progress: Progress | None, *, hvd=None, blend: float | None = None) -> TrainResult:
    """The bag model, then the context tier or a fine-tuned encoder; one snapshot holding both (the
    second's arrays under ``cascade/``), its threshold and figures those of the two together."""
    started = time.perf_counter()
    if not 0.0 <= config.gate <= 1.0:
        raise TrainingError(f"the cascade's gate must be within [0, 1], not {config.gate}")
    if config.tuned and not (type(config.tuned_layers) is int and 1 <= config.tuned_layers <= sentence_encoder.LAYERS):
        raise TrainingError(f"a tuned model fine-tunes 1 to {sentence_encoder.LAYERS} layers, not {config.tuned_layers!r}")
    if sentence_encoder.available() is None:  # before the first model's training, not after it
        raise TrainingError(f"a cascade's second model needs the sentence encoder; {word_vectors.INSTALL_HINT}")
    plain = replace(config, cascade=False, tuned=False, context_epochs=0)
    first = _fit_model(dataset, train_set, val_set, replace(plain, context=False), labelled(progress, "bag"), hvd=hvd)
    name = "tuned" if config.tuned else "context"
    cascade: dict[str, Any] = {"gate": config.gate}
    if config.tuned:
        from botyard.training.tuning import fit_tuned  # noqa: PLC0415

        second_model, second_arrays, history = fit_tuned(dataset, train_set, val_set, config, labelled(progress, name), hvd=hvd)
        second_metrics = {"train_loss": round(history[-1]["loss"], 6)}
        if "val_accuracy" in history[-1]:
            second_metrics["validation_accuracy"] = round(history[-1]["val_accuracy"], 6)
        cascade["blend"] = 1.0
    else:
        second = _fit_model(
            dataset, train_set, val_set, replace(plain, context=True, epochs=config.context_tier_epochs, scope=False),
            labelled(progress, name), hvd=hvd,
        )
        second_model, second_arrays, second_metrics = second.manifest["model"], second.arrays, second.metrics
    model = {**first.manifest["model"], "cascade": {**cascade, "model": second_model}}
    arrays = {**first.arrays, **{CASCADE + k: v for k, v in second_arrays.items()}}
    predictor = Predictor({"model": model}, arrays)
    if config.tuned:
        chosen = choose_blend(predictor, val_set) if val_set or blend is None else blend
        model["cascade"]["blend"] = predictor.blend = chosen
    evaluation = evaluate(predictor, val_set) if val_set else {}
    scored = evaluation.get("scored", [])
    model["threshold"] = calibrate(scored, config.recall_target)
    if model.get("scope"):  # the gate, which is all ``predictor`` answers below, does not read it
        model["scope"]["threshold"] = calibrate_score(scored, config.recall_target)
    metrics = {**first.metrics, **{k: v for k, v in evaluation.items() if k not in ("scored", "counts")}}
    if val_set:
        metrics["validation_escalated"] = round(sum(predictor.escalates(e.tokens) for e in val_set) / len(val_set), 6)
        metrics["validation_accuracy_bag"] = first.metrics["validation_accuracy"]
        if "validation_accuracy" in second_metrics:
            metrics[f"validation_accuracy_{name}"] = second_metrics["validation_accuracy"]
    metrics[f"train_loss_{name}"] = second_metrics["train_loss"]
    training = {k: v for k, v in asdict(config).items() if k != "features"}
    manifest = {**first.manifest, "model": model, "training": training, "metrics": metrics}
    return TrainResult(manifest, arrays, metrics, time.perf_counter() - started, tuple(scored),
                       evaluation.get("counts", ()))


BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Weights of a tuned second model's answer against the bag model's that training chooses from."""


def choose_blend(predictor: Predictor, val_set: Sequence[Example]) -> float:
    """The weight in :data:`BLENDS` whose cascade scores best on the validation examples (intent
    accuracy plus entity F1; ties: the one nearest 0.5; 0.5 without validation examples)."""
    if not val_set:
        return 0.5
    predictor.fallback.prime([e.tokens for e in val_set if predictor.escalates(e.tokens)])

    def merit(weight: float) -> tuple[float, float]:
        predictor.blend = weight
        scores = evaluate(predictor, val_set)
        return scores["validation_accuracy"] + scores.get("validation_entity_f1", 0.0), -abs(weight - 0.5)

    return max(BLENDS, key=merit)


def _fit_model(
    dataset: Dataset,
    train_set: Sequence[Example],
    val_set: Sequence[Example],
    config: TrainConfig,
    progress: Progress | None,
    *,
    hvd=None,
) -> TrainResult:
    """One model: :func:`fit` without the cascade."""
    started = time.perf_counter()
    if not train_set:
        raise TrainingError("no training examples")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter
    import keras  # noqa: PLC0415 - training is the only place Keras is imported
    import tensorflow as tf  # noqa: PLC0415

    from botyard.training import network  # noqa: PLC0415

    rank, size = (hvd.rank(), hvd.size()) if hvd else (0, 1)
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()

    featurizer = Featurizer.fit([e.tokens for e in train_set], config.features)
    vectors = word_vectors.available() if config.vectors else None
    if vectors is not None:
        featurizer.vectors, featurizer.center = vectors, vectors.mean()
    label_index = {name: i for i, name in enumerate(dataset.labels)}
    tag_index = {name: i for i, name in enumerate(dataset.tags)}
    has_tags = len(dataset.tags) > 1
    if config.context:
        if vectors is None:
            raise TrainingError(f"the sentence encoder needs the word vectors; {word_vectors.INSTALL_HINT}")
        featurizer.context = sentence_encoder.available()
    contexts = featurizer.contexts([e.tokens for e in train_set], encoding_progress(progress, rank))
    encoded = [featurizer.encode(e.tokens, c) for e, c in zip(train_set, contexts)]
    y_int = np.array([label_index[e.intent] for e in train_set], np.int32)
    y_tag = [np.array([tag_index.get(t, 0) for t in e.tags], np.int32) for e in train_set]

    shape = network.Shape(
        featurizer.size, len(dataset.labels), len(dataset.tags),
        embed=config.embed, hidden=config.hidden, conv=config.conv, kernel=config.kernel,
        conv_layers=config.conv_layers, dropout=config.dropout, pool=config.pool,
        vectors=vectors.dim if vectors is not None else 0,
        vector_proj=config.vector_proj if vectors is not None else 0,
        skip=config.context and vectors is not None,
    )
    model = network.build(shape)
    per_worker = max(1, config.batch_size // size)
    n = len(train_set)
    steps = max(1, (n // size) // per_worker)
    # Cosine decay to zero: the last epochs settle instead of bouncing between minima.
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps * config.epochs)
    optimizer = keras.optimizers.Adam(schedule)
    optimizer.build(model.trainable_variables)
    if hvd:
        for i, v in enumerate(model.variables):
            v.assign(hvd.broadcast(v.value, root_rank=0, name=f"init.{i}"))
        keras.utils.set_random_seed(config.seed + rank)  # different dropout masks per worker

    input_names = ["sent_ids", "sent_w", "sent_seg", "tok_ids", "tok_w", "tok_seg", "tok_mask"]
    if vectors is not None:
        input_names += ["vec", "tok_vec"] if has_tags or config.pool else ["vec"]
    specs = {"tok_mask": [None, None], "vec": [None, shape.vectors], "tok_vec": [None, None, shape.vectors]}
    signature = [
        {n: tf.TensorSpec(specs.get(n, [None]), "int32" if n.endswith(("_ids", "_seg")) else "float32")
         for n in input_names},
        tf.TensorSpec([None], "int32"),
        tf.TensorSpec([None, None], "int32"),
    ]

    @tf.function(input_signature=signature)
    def step(inputs, labels, tags):
        with tf.GradientTape() as tape:
            out = model(inputs, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, out["intent"]))
            if has_tags:
                # Entity tokens are rare (most tokens are O): they weigh entity_weight times more.
                weight = inputs["tok_mask"] * tf.where(tags > 0, config.entity_weight, 1.0)
                per_token = keras.losses.sparse_categorical_crossentropy(tags, out["tags"])
                loss += tf.reduce_sum(per_token * weight) / tf.maximum(tf.reduce_sum(weight), 1.0)
        variables = model.trainable_variables
        grads = tape.gradient(loss, variables)
        if hvd:
            grads = [hvd.allreduce(g, op=hvd.Average, name=f"grad.{i}") for i, g in enumerate(grads)]
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    def batch_inputs(idx: Sequence[int]):
        if has_tags or config.pool:
            arrays = collate([encoded[i] for i in idx])
        else:  # no token bags (nor token vectors) needed
            arrays = collate([(encoded[i][0], NO_TOKENS, *[(v[0], v[1][:0]) for v in encoded[i][2:]]) for i in idx])
        t_len = arrays["tok_mask"].shape[1]
        tags = np.zeros((len(idx), t_len), np.int32)
        if has_tags:
            for row, i in enumerate(idx):
                tags[row, : len(y_tag[i])] = y_tag[i]
        return {n: arrays[n] for n in input_names}, y_int[list(idx)], tags

    @tf.function(input_signature=signature[:1])
    def infer(inputs):
        return tf.argmax(model(inputs, training=False)["intent"], axis=1, output_type=tf.int32)

    val_batches = []  # featurised once: (inputs, labels) per chunk of 256
    for i in range(0, len(val_set), 256):
        chunk = val_set[i : i + 256]
        arrays = featurizer.batch([e.tokens for e in chunk])
        val_batches.append(({n: arrays[n] for n in input_names}, np.array([label_index[e.intent] for e in chunk])))

    rng = np.random.default_rng(config.seed)
    history: list[dict[str, float]] = []
    for epoch in range(config.epochs):
        order = rng.permutation(n)[rank::size][: steps * per_worker]
        total = 0.0
        for s in range(steps):
            total += float(step(*batch_inputs(order[s * per_worker : (s + 1) * per_worker])))
        record = {"epoch": epoch + 1, "epochs": config.epochs, "loss": total / steps}
        if val_set and rank == 0 and (epoch + 1 == config.epochs or progress):
            record["val_accuracy"] = _keras_accuracy(infer, val_batches)
        history.append(record)
        if progress and rank == 0:
            progress(record)

    arrays = network.export_arrays(model)
    if config.float16:
        arrays["embed"] = arrays["embed"].astype(np.float16)
    if has_tags and config.transition_weight:
        arrays.update(tag_prior(y_tag, len(dataset.tags), config.transition_weight))
    arrays["vocabulary"] = featurizer.vocabulary
    arrays["idf"] = featurizer.idf
    arrays["families"] = featurizer.families
    if vectors is not None:
        arrays["vectors/center"] = featurizer.center
    model_manifest = {
        "kind": MODEL_KIND,
        "labels": list(dataset.labels),
        "tags": list(dataset.tags) if has_tags else [],
        "features": config.features.to_dict(),
        "shape": {k: v for k, v in asdict(shape).items() if k != "dropout"},
        "threshold": 0.5,
    }
    if vectors is not None:
        model_manifest["vectors"] = vectors.reference()
    if featurizer.context is not None:
        model_manifest["context"] = featurizer.context.reference()
    if config.features.morphemes:
        model_manifest["analyzer"] = korean.reference()
    predictor = Predictor({"model": model_manifest}, arrays)
    if config.scope:
        known = [e for e in train_set if e.intent != OUT_OF_SCOPE]  # the bot's out-of-scope examples are not a bar
        if len(known) >= 2:
            hidden = np.stack([predictor.sentence_vector(e.tokens) for e in known])
            spec, scope_arrays = in_scope.build(hidden, np.array([label_index[e.intent] for e in known]), len(dataset.labels))
            arrays.update(scope_arrays)
            model_manifest["scope"] = spec
            predictor = Predictor({"model": model_manifest}, arrays)
    evaluation = evaluate(predictor, val_set) if val_set else {}
    scored = evaluation.get("scored", [])
    model_manifest["threshold"] = calibrate(scored, config.recall_target)
    if model_manifest.get("scope"):
        model_manifest["scope"]["threshold"] = calibrate_score(scored, config.recall_target)
    metrics = {
        "train_examples": len(train_set),
        "validation_examples": len(val_set),
        "train_loss": round(history[-1]["loss"], 6),
        "workers": size,
        **{k: v for k, v in evaluation.items() if k not in ("scored", "counts")},
    }
    manifest = {
        "data_hash": data_hash(train_set),
        "model": model_manifest,
        "training": {k: v for k, v in asdict(config).items() if k != "features"},
        "metrics": metrics,
        "framework": {"keras": keras.__version__, "tensorflow": tf.__version__},
    }
    return TrainResult(manifest, arrays, metrics, time.perf_counter() - started, tuple(scored),
                       evaluation.get("counts", ()))


def _keras_accuracy(infer, batches) -> float:
    correct = sum(int((np.asarray(infer(inputs)) == labels).sum()) for inputs, labels in batches)
    return correct / sum(len(labels) for _, labels in batches)


__all__ = ["TrainResult", "fit", "fits_for", "save_result", "train", "train_dataset", "train_to_store"]
