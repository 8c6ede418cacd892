"""Snapshot stores: one Protocol, the local-directory backend (the default) and helpers.

Layout of a :class:`LocalSnapshotStore` under its root::

    objects/<id[:2]>/<id>.snap          immutable content, named by its hash
    bots/<tenant>/<bot>/<id>.json       index entry (a :class:`SnapshotInfo`)

The NATS JetStream object-store backend is :class:`botyard.snapshots.nats_store.NatsSnapshotStore`;
both pass ``tests/snapshots/test_store_contract.py``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Protocol

import numpy as np

from botyard.snapshots.errors import SnapshotError, SnapshotNotFound
from botyard.snapshots.format import ID_HEX_DIGITS, Snapshot, content_hash, pack, unpack


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """A store's index entry: what listing needs without loading the content."""

    id: str
    tenant: str
    bot: str
    created_at: float
    size: int
    parent: str | None = None
    """The snapshot this one was trained to replace (the bot's production target then)."""
    content_hash: str = ""
    """Hash of the model content without provenance: equal for the same data, bot and seed."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SnapshotInfo":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def of(cls, snapshot_id: str, manifest: Mapping[str, Any], size: int, arrays: Mapping[str, np.ndarray]) -> "SnapshotInfo":
        return cls(
            snapshot_id, manifest["tenant"], manifest["bot"], float(manifest.get("created_at", 0.0)), size,
            manifest.get("parent"), content_hash(manifest, arrays),
        )


class SnapshotStore(Protocol):
    """Where snapshots live. Every ``load`` verifies the content against its id."""

    def save(self, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> SnapshotInfo:
        """Store new content; content equal to a stored snapshot of the bot returns that one."""

    def load(self, snapshot_id: str) -> Snapshot:
        """The verified snapshot; :class:`SnapshotNotFound` or :class:`SnapshotCorrupt`."""

    def info(self, snapshot_id: str) -> SnapshotInfo:
        """The index entry of one snapshot; :class:`SnapshotNotFound`."""

    def list(self, tenant: str | None = None, bot: str | None = None) -> list[SnapshotInfo]:
        """Index entries, oldest first."""

    def delete(self, snapshot_id: str) -> None:
        """Remove a snapshot (garbage collection); unknown ids are ignored."""


def latest(store: SnapshotStore, tenant: str, bot: str) -> SnapshotInfo | None:
    infos = store.list(tenant, bot)
    return infos[-1] if infos else None


def same_content(store: SnapshotStore, info: SnapshotInfo) -> SnapshotInfo | None:
    """A stored snapshot of the same bot with the same model content, if any."""
    for other in store.list(info.tenant, info.bot):
        if other.content_hash and other.content_hash == info.content_hash:
            return other
    return None


def check_id(snapshot_id: str) -> str:
    if not isinstance(snapshot_id, str) or len(snapshot_id) != ID_HEX_DIGITS or not all(
        c in "0123456789abcdef" for c in snapshot_id
    ):
        raise SnapshotNotFound(str(snapshot_id))
    return snapshot_id


def sort_infos(infos: list[SnapshotInfo]) -> list[SnapshotInfo]:
    return sorted(infos, key=lambda i: (i.tenant, i.bot, i.created_at, i.id))


class LocalSnapshotStore:
    """Snapshots in a local directory; safe for concurrent readers and writers."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _object_path(self, snapshot_id: str) -> Path:
        check_id(snapshot_id)
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

    def _index_path(self, info: SnapshotInfo) -> Path:
        return self.root / "bots" / info.tenant / info.bot / f"{info.id}.json"

    def save(self, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> SnapshotInfo:
        snapshot_id, data = pack(manifest, arrays)
        info = SnapshotInfo.of(snapshot_id, manifest, len(data), arrays)
        existing = same_content(self, info)
        if existing is not None:  # immutable: the same model is the same snapshot
            return existing
        path = self._object_path(snapshot_id)
        if not path.exists():
            self._write_atomic(path, data)
        self._write_atomic(self._index_path(info), json.dumps(info.to_dict()).encode())
        return info

    def load(self, snapshot_id: str) -> Snapshot:
        """Read, verify and decode a snapshot. Every read hashes the bytes against the id,
        whatever the file's inode, size or modification time say: bytes can rot in place
        without changing any of them (docs/snapshots.md has what the hash costs)."""
        path = self._object_path(snapshot_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SnapshotNotFound(snapshot_id) from None
        except OSError as exc:
            raise SnapshotError(f"cannot read snapshot {snapshot_id}: {exc}", snapshot=snapshot_id) from None
        return unpack(snapshot_id, data)

    def info(self, snapshot_id: str) -> SnapshotInfo:
        check_id(snapshot_id)
        for path in (self.root / "bots").glob(f"*/*/{snapshot_id}.json"):
            return self._read_info(path)
        raise SnapshotNotFound(snapshot_id)

    @staticmethod
    def _read_info(path: Path) -> SnapshotInfo:
        return SnapshotInfo.from_dict(json.loads(path.read_text()))

    def list(self, tenant: str | None = None, bot: str | None = None) -> list[SnapshotInfo]:
        pattern = f"{tenant or '*'}/{bot or '*'}/*.json"
        infos = []
        for path in (self.root / "bots").glob(pattern):
            try:
                infos.append(self._read_info(path))
            except (OSError, ValueError, TypeError):
                continue  # a half-written index entry is skipped, never fatal
        return sort_infos(infos)

    def latest(self, tenant: str, bot: str) -> SnapshotInfo | None:
        return latest(self, tenant, bot)

    def delete(self, snapshot_id: str) -> None:
        try:
            info = self.info(snapshot_id)
        except SnapshotNotFound:
            return
        self._index_path(info).unlink(missing_ok=True)
        self._object_path(snapshot_id).unlink(missing_ok=True)
