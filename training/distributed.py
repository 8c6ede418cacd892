"""Training across N processes (and hosts) with Horovod over gloo; no MPI needed.

``botyard train bot.yml --workers 4`` runs :func:`botyard.training.pipeline.fit` in 4
processes through ``horovod.runner.run``: each worker takes its share of every batch,
gradients are averaged with ``hvd.allreduce``, and rank 0's result comes back here to
be saved. ``--hosts a:2,b:2`` spreads the workers over hosts (Horovod reaches other
hosts with ssh; botyard must be installed at the same path on each).

Horovod is an optional extra built against the pinned TensorFlow:
``bash training/install-horovod.sh`` (see the README).
"""

from __future__ import annotations

import sys
from typing import Any

from botyard.models.definition import BotDefinition
from botyard.training.config import TrainConfig
from botyard.training.errors import TrainingError
from botyard.training.pipeline import TrainResult, train

INSTALL_HINT = "Horovod is not installed: run `bash training/install-horovod.sh` (see the README)"


def horovod_available() -> bool:
    try:
        import horovod.tensorflow  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def train_distributed(
    definition: BotDefinition, config: TrainConfig, workers: int, hosts: str | None = None
) -> TrainResult:
    """Train with ``workers`` Horovod processes; the result equals what rank 0 trained."""
    if workers < 1:
        raise TrainingError(f"workers must be at least 1, got {workers}")
    try:
        from horovod.runner import run  # noqa: PLC0415
    except ImportError:
        raise TrainingError(INSTALL_HINT) from None
    results = run(
        _worker,
        args=(definition.to_dict(), config),
        num_proc=workers,
        hosts=hosts or f"localhost:{workers}",
        use_gloo=True,
    )
    result = results[0]
    if not isinstance(result, TrainResult):
        raise TrainingError("rank 0 returned no training result")
    return result


def _worker(definition: dict[str, Any], config: TrainConfig) -> TrainResult | None:
    """One Horovod process: train its share; rank 0 returns the frozen result."""
    import horovod.tensorflow as hvd  # noqa: PLC0415

    hvd.init()

    def progress(record: dict[str, Any]) -> None:
        if "stage" in record:
            print(f"{record['stage']} {record['done']}/{record['total']}", file=sys.stderr, flush=True)
            return
        val = f" val_accuracy {record['val_accuracy']:.4f}" if "val_accuracy" in record else ""
        print(f"epoch {record['epoch']}/{record['epochs']} loss {record['loss']:.4f}{val}", file=sys.stderr, flush=True)

    result = train(BotDefinition.from_dict(definition), config, progress, hvd=hvd)
    return result if hvd.rank() == 0 else None
