"""Progress records of training: what :func:`botyard.training.pipeline.train` and the
fine-tuning of :mod:`botyard.training.tuning` report while they run.

A record is a dict: per epoch ``{"epoch", "epochs", "loss", "val_accuracy"}``; while the
examples are read ``{"stage", "done", "total"}``; a cascade's models add ``"model"``.
"""

from __future__ import annotations

from typing import Any, Callable

Progress = Callable[[dict[str, Any]], None]


def encoding_progress(progress: Progress | None, rank: int) -> Callable[[int, int], None] | None:
    """Progress records while the sentence encoder reads the training examples (every 1,024)."""
    if progress is None or rank != 0:
        return None

    def report(done: int, total: int) -> None:
        if done == total or done % 1024 < 64:
            progress({"stage": "encoding", "done": done, "total": total})

    return report


def labelled(progress: Progress | None, name: str) -> Progress | None:
    """Progress records of one of a cascade's models, marked with its name."""
    return None if progress is None else (lambda record: progress({**record, "model": name}))
