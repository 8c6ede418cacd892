"""The snapshot file: one canonical msgpack document, named by the hash of its bytes.

```
{"format": 1,
 "manifest": {...},                       # tenant, bot, model kind, labels, metrics, ...
 "arrays": {name: {"dtype": "<f4", "shape": [..], "data": bytes}}}
```

Keys are sorted and floats are stored as float64 in the manifest, so the same content
always packs to the same bytes; the id is the first 32 hex digits of their SHA-256.
Loading recomputes the hash, so a flipped byte is refused, never served.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping

import msgpack
import numpy as np

from botyard.snapshots.errors import SnapshotCorrupt

FORMAT_VERSION = 1
ID_HEX_DIGITS = 32


@dataclass(frozen=True)
class Snapshot:
    id: str
    manifest: Mapping[str, Any]
    arrays: Mapping[str, np.ndarray] = field(repr=False)
    size: int = 0

    @property
    def tenant(self) -> str:
        return self.manifest["tenant"]

    @property
    def bot(self) -> str:
        return self.manifest["bot"]


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


def content_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:ID_HEX_DIGITS]


def pack(manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> tuple[str, bytes]:
    """Canonical bytes of a snapshot and the id they hash to."""
    encoded = {
        name: {
            "dtype": np.asarray(arr).dtype.str,
            "shape": list(np.asarray(arr).shape),
            "data": np.ascontiguousarray(arr).tobytes(),
        }
        for name, arr in arrays.items()
    }
    doc = _canonical({"format": FORMAT_VERSION, "manifest": manifest, "arrays": encoded})
    data = msgpack.packb(doc, use_bin_type=True)
    return content_id(data), data


PROVENANCE = ("created_at", "parent")
"""Manifest keys that say where a snapshot came from, not what model it holds."""


def content_hash(manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str:
    """The hash of a snapshot's model content, leaving out its provenance.

    Two trainings of the same bot file on the same data with the same seed produce the
    same weights, so the same content hash: the store keeps the first and returns it.
    """
    return pack({k: v for k, v in manifest.items() if k not in PROVENANCE}, arrays)[0]


def unpack(snapshot_id: str, data: bytes, *, verify: bool = True) -> Snapshot:
    """Verify ``data`` against ``snapshot_id`` (unless the caller already has) and decode it."""
    if verify:
        actual = content_id(data)
        if actual != snapshot_id:
            raise SnapshotCorrupt(snapshot_id, f"content hashes to {actual}")
    try:
        doc = msgpack.unpackb(data, raw=False)
        if doc.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported format {doc.get('format')!r}")
        arrays = {
            name: np.frombuffer(spec["data"], dtype=np.dtype(spec["dtype"])).reshape(spec["shape"])
            for name, spec in doc["arrays"].items()
        }
        manifest = doc["manifest"]
    except Exception as exc:  # any decoding problem is corruption, reported alike
        raise SnapshotCorrupt(snapshot_id, f"cannot decode: {exc}") from None
    return Snapshot(snapshot_id, manifest, arrays, len(data))
