"""Training as a job: ``botyard train`` in a child process, one at a time per node, with
its progress read from the child's JSON lines.

The node serving turns never imports TensorFlow: training runs in its own process,
against the node's own stores (the child gets the node's configuration as ``BOTYARD_*``
variables and the node's working directory, so relative paths name the same files), and
ends like ``botyard train --promote ALIAS``: a snapshot in the store and,
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
from typing import Any, Mapping

from botyard.ops.config import PREFIX, Config
from botyard.ops.errors import AdminError
from botyard.training.config import as_args, user_settings

log = logging.getLogger(__name__)

KEEP_JOBS = 100
STDERR_LINES = 20


@dataclasses.dataclass(frozen=True, slots=True)
class TrainOptions:
    """What a training job is asked to do: the user's choice of the training settings
    (:func:`botyard.training.config.user_settings`, declared once on ``TrainConfig``), and
    what follows training."""

    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Chosen settings by name; one absent, None or False keeps the training configuration's default."""
    promote: str | None = None
    """Point this alias at the new snapshot; None: a bot's first snapshot becomes production."""
    labels: bool = False
    """Add the bot's labelled turns to its examples."""

    def to_dict(self) -> dict[str, Any]:
        """The job record's ``options``: every setting (None, or False for a flag, if not chosen), ``promote``, ``labels``."""
        unset = {s.name: False if s.type is bool else None for s in user_settings()}
        chosen = {k: v for k, v in self.settings.items() if k in unset and v is not None}
        return {**unset, **chosen, "promote": self.promote, "labels": self.labels}

    def args(self) -> list[str]:
        """The job's flags of ``botyard train``."""
        args = as_args(self.settings)
        if self.promote is not None:
            args += ["--promote", self.promote]
        return args + (["--labels"] if self.labels else [])


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
            "options": options.to_dict(), "submitted_at": time.time(), "started_at": None,
            "finished_at": None, "epoch": 0, "epochs": options.settings.get("epochs"), "loss": None, "val_accuracy": None, "model": None,
            "fold": None, "folds": None,  # a calibration fold's training (issue 26); None: the final one
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
            cmd = [sys.executable, "-m", "botyard", "train", path, "--progress", "json", *options.args()]
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
            error = next((line.strip() for line in reversed(stderr_tail) if line.strip()), f"exit status {code}")
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
            self._update(job_id, **{k: record.get(k) for k in ("epoch", "epochs", "loss", "val_accuracy", "model", "fold", "folds")})
        elif "snapshot" in record:
            self._update(job_id, snapshot=record["snapshot"])
        elif "moved" in record:
            self._update(job_id, moved=record["moved"])
