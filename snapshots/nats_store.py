"""Snapshots in the NATS JetStream object store, for nodes that share no disk.

One object per snapshot, named by its id; the object's description holds the
:class:`SnapshotInfo` as JSON, so listing reads no content. The store keeps its own
connection and event loop thread (a :class:`NatsBridge`), so it can be called from any
actor thread; it must not be called from an asyncio loop.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np
from nats.js.api import ObjectMeta, StorageType
from nats.js.errors import DigestMismatchError, NotFoundError, ObjectNotFoundError

from botyard.actors.bridge import NatsBridge
from botyard.snapshots.errors import SnapshotCorrupt, SnapshotError, SnapshotNotFound
from botyard.snapshots.format import Snapshot, pack, unpack
from botyard.snapshots.store import SnapshotInfo, check_id, latest, same_content, sort_infos

DEFAULT_BUCKET = "botyard-snapshots"
TIMEOUT = 30.0


class NatsSnapshotStore:
    def __init__(self, servers: Sequence[str] | str, *, bucket: str = DEFAULT_BUCKET) -> None:
        self.bucket = bucket
        self.bridge = NatsBridge([servers] if isinstance(servers, str) else list(servers), name="botyard-snapshots")
        self.bridge.start()
        try:
            self._obs = self.bridge.call(self._open())
        except Exception as exc:
            self.bridge.stop()
            raise SnapshotError(f"cannot open NATS object store {bucket!r}: {exc}") from None

    async def _open(self):
        js = self.bridge.nc.jetstream(timeout=TIMEOUT)
        try:
            return await js.object_store(self.bucket)
        except NotFoundError:
            return await js.create_object_store(self.bucket, storage=StorageType.FILE)

    def close(self) -> None:
        self.bridge.stop()

    def __enter__(self) -> "NatsSnapshotStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, coro: Any) -> Any:
        try:
            return self.bridge.call(coro, TIMEOUT)
        except (ObjectNotFoundError, NotFoundError, DigestMismatchError, SnapshotError):
            raise
        except Exception as exc:
            raise SnapshotError(f"NATS object store {self.bucket!r}: {type(exc).__name__}: {exc}") from None

    # -- the SnapshotStore protocol --------------------------------------------------------

    def save(self, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> SnapshotInfo:
        snapshot_id, data = pack(manifest, arrays)
        info = SnapshotInfo.of(snapshot_id, manifest, len(data), arrays)
        existing = same_content(self, info)
        if existing is not None:
            return existing
        meta = ObjectMeta(name=snapshot_id, description=json.dumps(info.to_dict()))
        self._call(self._obs.put(snapshot_id, data, meta=meta))
        return info

    def load(self, snapshot_id: str) -> Snapshot:
        check_id(snapshot_id)
        try:
            result = self._call(self._obs.get(snapshot_id))
        except (ObjectNotFoundError, NotFoundError):
            raise SnapshotNotFound(snapshot_id) from None
        except DigestMismatchError:
            raise SnapshotCorrupt(snapshot_id, "the object's chunks do not match its digest") from None
        return unpack(snapshot_id, bytes(result.data))

    def info(self, snapshot_id: str) -> SnapshotInfo:
        check_id(snapshot_id)
        try:
            obj = self._call(self._obs.get_info(snapshot_id))
        except (ObjectNotFoundError, NotFoundError):
            raise SnapshotNotFound(snapshot_id) from None
        return SnapshotInfo.from_dict(json.loads(obj.description))

    def list(self, tenant: str | None = None, bot: str | None = None) -> list[SnapshotInfo]:
        try:
            objects = self._call(self._obs.list(ignore_deletes=True))
        except (ObjectNotFoundError, NotFoundError):
            return []
        infos = []
        for obj in objects:
            try:
                info = SnapshotInfo.from_dict(json.loads(obj.description or ""))
            except (ValueError, TypeError):
                continue  # not one of ours
            if (tenant is None or info.tenant == tenant) and (bot is None or info.bot == bot):
                infos.append(info)
        return sort_infos(infos)

    def latest(self, tenant: str, bot: str) -> SnapshotInfo | None:
        return latest(self, tenant, bot)

    def delete(self, snapshot_id: str) -> None:
        check_id(snapshot_id)
        try:
            self._call(self._obs.delete(snapshot_id))
        except (ObjectNotFoundError, NotFoundError):
            return
