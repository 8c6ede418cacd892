import numpy as np
import pytest

from botyard.snapshots import LocalSnapshotStore, SnapshotCorrupt, SnapshotNotFound, pack, unpack


def content(seed=0):
    rng = np.random.default_rng(seed)
    manifest = {"tenant": "acme", "bot": "faq", "metrics": {"acc": 0.5}, "model": {"labels": ["a", "b"]}}
    return manifest, {"w": rng.standard_normal((4, 3)).astype(np.float32), "b": np.zeros(3, np.float32)}


def test_id_is_content_hash_and_round_trips():
    manifest, arrays = content()
    sid, data = pack(manifest, arrays)
    assert pack(manifest, arrays) == (sid, data)
    assert pack(*content(seed=1))[0] != sid
    snap = unpack(sid, data)
    assert snap.manifest == manifest and np.array_equal(snap.arrays["w"], arrays["w"])


def test_flipped_byte_is_refused(tmp_path):
    store = LocalSnapshotStore(tmp_path)
    info = store.save(*content())
    path = next((tmp_path / "objects").rglob(f"{info.id}.snap"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotCorrupt) as exc:
        store.load(info.id)
    assert exc.value.code == "corrupt_snapshot" and info.id in str(exc.value)


def test_truncated_snapshot_is_refused(tmp_path):
    store = LocalSnapshotStore(tmp_path)
    info = store.save(*content())
    path = next((tmp_path / "objects").rglob(f"{info.id}.snap"))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(SnapshotCorrupt):
        store.load(info.id)


def test_unknown_and_listing(tmp_path):
    store = LocalSnapshotStore(tmp_path)
    with pytest.raises(SnapshotNotFound):
        store.load("0" * 32)
    with pytest.raises(SnapshotNotFound):
        store.load("../../etc/passwd")
    a = store.save(*content(0))
    b = store.save(*content(1))
    assert store.save(*content(0)).id == a.id  # immutable: same content, same entry
    assert [i.id for i in store.list("acme", "faq")] == [a.id, b.id]
    assert store.latest("acme", "faq").id == b.id
    assert store.latest("acme", "other") is None
