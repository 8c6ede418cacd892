"""Snapshot stores: one Protocol, and the local-directory backend (the default).

Layout of a :class:`LocalSnapshotStore` under its root::

    objects/<id[:2]>/<id>.snap          immutable content, named by its hash
    bots/<tenant>/<bot>/<id>.json       index entry: id, tenant, bot, created_at, size
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

import numpy as np

from botyard.snapshots.errors import SnapshotError, SnapshotNotFound
from botyard.snapshots.format import ID_HEX_DIGITS, Snapshot, pack, unpack


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    id: str
    tenant: str
    bot: str
    created_at: float
    size: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SnapshotStore(Protocol):
    def save(self, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> SnapshotInfo: ...

    def load(self, snapshot_id: str) -> Snapshot: ...

    def list(self, tenant: str | None = None, bot: str | None = None) -> list[SnapshotInfo]: ...

    def latest(self, tenant: str, bot: str) -> SnapshotInfo | None: ...


class LocalSnapshotStore:
    """Snapshots in a local directory; safe for concurrent readers and writers."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _object_path(self, snapshot_id: str) -> Path:
        if len(snapshot_id) != ID_HEX_DIGITS or not all(c in "0123456789abcdef" for c in snapshot_id):
            raise SnapshotNotFound(snapshot_id)
        return self.root / "objects" / snapshot_id[:2] / f"{snapshot_id}.snap"

    @staticmethod
    def _write_atomic(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def save(self, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> SnapshotInfo:
        snapshot_id, data = pack(manifest, arrays)
        tenant, bot = manifest["tenant"], manifest["bot"]
        index = self.root / "bots" / tenant / bot / f"{snapshot_id}.json"
        if index.exists():  # immutable: the same content is the same snapshot
            return self._read_info(index)
        path = self._object_path(snapshot_id)
        if not path.exists():
            self._write_atomic(path, data)
        info = SnapshotInfo(snapshot_id, tenant, bot, time.time(), len(data))
        self._write_atomic(index, json.dumps(info.to_dict()).encode())
        return info

    def load(self, snapshot_id: str) -> Snapshot:
        path = self._object_path(snapshot_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SnapshotNotFound(snapshot_id) from None
        except OSError as exc:
            raise SnapshotError(f"cannot read snapshot {snapshot_id}: {exc}", snapshot=snapshot_id) from None
        return unpack(snapshot_id, data)

    @staticmethod
    def _read_info(path: Path) -> SnapshotInfo:
        return SnapshotInfo(**json.loads(path.read_text()))

    def list(self, tenant: str | None = None, bot: str | None = None) -> list[SnapshotInfo]:
        pattern = f"{tenant or '*'}/{bot or '*'}/*.json"
        infos = []
        for path in (self.root / "bots").glob(pattern):
            try:
                infos.append(self._read_info(path))
            except (OSError, ValueError, TypeError):
                continue  # a half-written index entry is skipped, never fatal
        return sorted(infos, key=lambda i: (i.tenant, i.bot, i.created_at))

    def latest(self, tenant: str, bot: str) -> SnapshotInfo | None:
        infos = self.list(tenant, bot)
        return infos[-1] if infos else None
