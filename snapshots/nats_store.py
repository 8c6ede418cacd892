"""Snapshots in the NATS JetStream object store, for nodes that share no disk.

One object per snapshot, named by its id; the object's description holds the
:class:`SnapshotInfo` as JSON, so listing reads no content. The store runs on a
:class:`NatsLoop` it is given (the node's bridge, or one the CLI starts for it:
:func:`botyard.ops.stores.open_snapshots`): the blocking methods of the
:class:`~botyard.snapshots.store.SnapshotStore` protocol may be called from any thread but
the loop's, and :meth:`NatsSnapshotStore.fetch_later` reads a snapshot without blocking
the caller at all (the node's snapshot loader uses it).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable, Mapping, Protocol

import numpy as np
from nats.js.api import ObjectMeta, StorageType
from nats.js.errors import DigestMismatchError, NotFoundError, ObjectNotFoundError

from botyard.snapshots.errors import SnapshotCorrupt, SnapshotError, SnapshotNotFound
from botyard.snapshots.format import Snapshot, pack, unpack
from botyard.snapshots.store import SnapshotInfo, check_id, latest, same_content, sort_infos

DEFAULT_BUCKET = "botyard-snapshots"
TIMEOUT = 30.0


class NatsLoop(Protocol):
    """An asyncio loop in a thread of its own, holding a NATS connection (``nc``)."""

    nc: Any

    def call(self, coro: Awaitable[Any], timeout: float | None = ...) -> Any:
        """Run ``coro`` on the loop and wait for its result (from another thread)."""

    def spawn(self, coro: Awaitable[Any], done: Callable[[Any, BaseException | None], None]) -> None:
        """Run ``coro`` on the loop and return at once; ``done(result, error)`` follows on the loop thread."""


Fetched = Callable[[bytes | None, SnapshotError | None], None]


class NatsSnapshotStore:
    def __init__(self, loop: NatsLoop, *, bucket: str = DEFAULT_BUCKET, on_close: Callable[[], None] | None = None) -> None:
        self.bucket = bucket
        self.loop = loop
        self._on_close = on_close
        try:
            self._obs = self.loop.call(self._open(), TIMEOUT)
        except Exception as exc:
            self.close()
            raise SnapshotError(f"cannot open NATS object store {bucket!r}: {exc}") from None

    async def _open(self):
        js = self.loop.nc.jetstream(timeout=TIMEOUT)
        try:
            return await js.object_store(self.bucket)
        except NotFoundError:
            return await js.create_object_store(self.bucket, storage=StorageType.FILE)

    def close(self) -> None:
        """Closes the loop too when this store was given it to own (``on_close``)."""
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def __enter__(self) -> "NatsSnapshotStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, coro: Any) -> Any:
        try:
            return self.loop.call(coro, TIMEOUT)
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
        except Exception as exc:
            raise self._fetch_error(snapshot_id, exc) from None
        return unpack(snapshot_id, bytes(result.data))

    def fetch_later(self, snapshot_id: str, done: Fetched) -> None:
        """Read a snapshot's bytes without waiting: ``done(data, None)`` or ``done(None, error)``
        follows on the loop's thread. The caller verifies them with :func:`~botyard.snapshots.format.unpack`."""
        check_id(snapshot_id)

        async def get() -> bytes:
            return bytes((await asyncio.wait_for(self._obs.get(snapshot_id), TIMEOUT)).data)

        def finished(data: Any, error: BaseException | None) -> None:
            done(None, self._fetch_error(snapshot_id, error)) if error is not None else done(data, None)

        self.loop.spawn(get(), finished)

    def _fetch_error(self, snapshot_id: str, exc: BaseException) -> SnapshotError:
        if isinstance(exc, (ObjectNotFoundError, NotFoundError)):
            return SnapshotNotFound(snapshot_id)
        if isinstance(exc, DigestMismatchError):
            return SnapshotCorrupt(snapshot_id, "the object's chunks do not match its digest")
        if isinstance(exc, SnapshotError):
            return exc
        return SnapshotError(f"NATS object store {self.bucket!r}: {type(exc).__name__}: {exc}")

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
