"""Immutable, content-addressed snapshots of trained bots, and the stores that hold them."""

from botyard.snapshots.errors import SnapshotCorrupt, SnapshotError, SnapshotNotFound
from botyard.snapshots.format import Snapshot, content_hash, pack, unpack
from botyard.snapshots.store import LocalSnapshotStore, SnapshotInfo, SnapshotStore

__all__ = [
    "LocalSnapshotStore",
    "Snapshot",
    "SnapshotCorrupt",
    "SnapshotError",
    "SnapshotInfo",
    "SnapshotNotFound",
    "SnapshotStore",
    "content_hash",
    "pack",
    "unpack",
]
