"""The root error of :mod:`botyard.snapshots`."""

from __future__ import annotations

from botyard.errors import BotyardError


class SnapshotError(BotyardError):
    code = "snapshot_error"


class SnapshotNotFound(SnapshotError):
    code = "unknown_snapshot"

    def __init__(self, snapshot_id: str) -> None:
        super().__init__(f"no snapshot {snapshot_id!r} in the store", snapshot=snapshot_id)


class SnapshotCorrupt(SnapshotError):
    """The bytes do not hash to the snapshot's id, or do not decode."""

    code = "corrupt_snapshot"

    def __init__(self, snapshot_id: str, problem: str) -> None:
        super().__init__(f"snapshot {snapshot_id} is corrupt: {problem}", snapshot=snapshot_id, problem=problem)
