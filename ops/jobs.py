"""Training as a job: ``botyard train`` in a child process, one at a time per node, with
its progress read from the child's JSON lines.

The node serving turns never imports TensorFlow: training runs in its own process,
against the node's own stores (the child gets the node's configuration as ``BOTYARD_*``
variables and the node's working directory, so relative paths name the same files), and ends like ``botyard train --promote ALIAS``: a snapshot in the store and,
if asked, an alias moved by event, which every node follows.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import OrderedDict, deque
from typing import Any

from botyard.ops.config import PREFIX, Config
from botyard.ops.errors import AdminError

log = logging.getLogger(__name__)

KEEP_JOBS = 100
STDERR_LINES = 20


@dataclasses.dataclass(frozen=True, slots=True)
class TrainOptions:
    """What a training job is asked to do."""

    epochs: int | None = None
    """Training epochs (default: the training configuration's)."""
    seed: int | None = None
    promote: str | None = None
    """Point this alias at the new snapshot; None: a bot's first snapshot becomes production."""
    labels: bool = False
    """Add the bot's labelled turns to its examples."""
    context: bool = False
    """Read utterances with the shared sentence encoder (``botyard train --context``)."""
    cascade: bool = False
    """The bag model first, the context tier when it is unsure (``botyard train --cascade``)."""
    tuned: bool = False
    """The bag model blended with a fine-tuned sentence encoder when it is unsure (``botyard train --tuned``)."""
    tuned_layers: int | None = None
    """With ``tuned``: the encoder's top layers fine-tuned (``botyard train --tuned-layers``)."""
    gate: float | None = None
    """The cascade's confidence gate (``botyard train --gate``; default: the training configuration's)."""
    float16: bool = False
    """Store the embedding table in half precision (``botyard train --float16``)."""


def child_env(config: Config) -> dict[str, str]:
    """The node's configuration as the environment of a ``botyard`` child process."""
    env = dict(os.environ)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value is not None:
            env[PREFIX + f.name.upper()] = str(value)
    env[PREFIX + "HTTP_PORT"] = "-1"
    return env


class TrainingJobs:
    """Queued training jobs of one node; :meth:`submit` returns at once."""

    def __init__(self, config: Config, nats_url: str | None) -> None:
        self.config = config.with_(nats_url=nats_url or config.nats_url)
        self.jobs: "OrderedDict[str, dict[str, Any]]" = OrderedDict()
        self._lock = threading.Lock()
        self._queue: "queue.Queue[tuple[str, dict, TrainOptions] | None]" = queue.Queue()
        self._child: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._run, name="training-jobs", daemon=True)
        self._thread.start()

    def submit(self, tenant: str, bot: str, definition: dict, options: TrainOptions, *, actor: str) -> dict[str, Any]:
        job = {
            "id": uuid.uuid4().hex[:16], "tenant": tenant, "bot": bot, "state": "queued", "actor": actor,
            "options": dataclasses.asdict(options), "submitted_at": time.time(), "started_at": None,
            "finished_at": None, "epoch": 0, "epochs": options.epochs, "loss": None, "val_accuracy": None, "model": None,
            "snapshot": None, "moved": None, "error": None,
        }
        with self._lock:
            self.jobs[job["id"]] = job
            while len(self.jobs) > KEEP_JOBS:
                oldest = next(iter(self.jobs))
                if self.jobs[oldest]["state"] in ("queued", "running"):
                    break
                self.jobs.popitem(last=False)
        self._queue.put((job["id"], definition, options))
        log.info("training job %s queued for %s/%s", job["id"], tenant, bot, extra={"job": job["id"], "tenant": tenant, "bot": bot})
        return dict(job)

    def get(self, tenant: str, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or job["tenant"] != tenant:
                raise AdminError("unknown_job", f"no training job {job_id!r} of tenant {tenant}", job=job_id)
            return dict(job)

    def list(self, tenant: str, bot: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(j) for j in reversed(self.jobs.values()) if j["tenant"] == tenant and bot in (None, j["bot"])]

    def stop(self) -> None:
        self._queue.put(None)
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
        self._thread.join(timeout=10)

    # -- the worker thread ---------------------------------------------------------------------------

    def _update(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            self.jobs[job_id].update(changes)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job_id, definition, options = item
            try:
                self._train(job_id, definition, options)
            except Exception as exc:  # a job that cannot start must not stop the queue
                log.exception("training job %s failed to run", job_id)
                self._update(job_id, state="failed", error=f"{type(exc).__name__}: {exc}", finished_at=time.time())

    def _train(self, job_id: str, definition: dict, options: TrainOptions) -> None:
        self._update(job_id, state="running", started_at=time.time())
        with tempfile.TemporaryDirectory(prefix="botyard-job-") as tmp:
            path = os.path.join(tmp, "bot.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(definition, f)
            cmd = [sys.executable, "-m", "botyard", "train", path, "--progress", "json"]
            for flag, value in (("--epochs", options.epochs), ("--seed", options.seed), ("--promote", options.promote),
                                ("--gate", options.gate), ("--tuned-layers", options.tuned_layers)):
                if value is not None:
                    cmd += [flag, str(value)]
            if options.labels:
                cmd.append("--labels")
            if options.context:
                cmd.append("--context")
            if options.cascade:
                cmd.append("--cascade")
            if options.tuned:
                cmd.append("--tuned")
            if options.float16:
                cmd.append("--float16")
            stderr_tail: deque[str] = deque(maxlen=STDERR_LINES)
            child = self._child = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(self.config),
            )
            drain = threading.Thread(target=lambda: stderr_tail.extend(child.stderr), daemon=True)
            drain.start()
            for line in child.stdout:
                self._progress(job_id, line)
            code = child.wait()
            drain.join(timeout=5)
            self._child = None
        if code == 0 and self.jobs[job_id]["snapshot"]:
            self._update(job_id, state="succeeded", finished_at=time.time())
            log.info("training job %s made snapshot %s", job_id, self.jobs[job_id]["snapshot"], extra={"job": job_id})
        else:
            error = next((l.strip() for l in reversed(stderr_tail) if l.strip()), f"exit status {code}")
            self._update(job_id, state="failed", finished_at=time.time(), error=error[:2000])
            log.warning("training job %s failed: %s", job_id, error, extra={"job": job_id})

    def _progress(self, job_id: str, line: str) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            return
        if not isinstance(record, dict):
            return
        if "epoch" in record:
            self._update(job_id, **{k: record.get(k) for k in ("epoch", "epochs", "loss", "val_accuracy", "model")})
        elif "snapshot" in record:
            self._update(job_id, snapshot=record["snapshot"])
        elif "moved" in record:
            self._update(job_id, moved=record["moved"])
