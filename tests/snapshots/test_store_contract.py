"""One contract for every snapshot store: the local directory and the NATS object store."""

import asyncio

import nats
import numpy as np
import pytest
from nats.js.api import ObjectMeta

from botyard.ops.stores import nats_snapshots
from botyard.snapshots import LocalSnapshotStore, SnapshotCorrupt, SnapshotNotFound, content_hash, pack, unpack


def content(seed=0, created_at=1.0, parent=None, bot="faq"):
    rng = np.random.default_rng(seed)
    manifest = {
        "tenant": "acme", "bot": bot, "metrics": {"acc": 0.5}, "model": {"labels": ["a", "b"]},
        "created_at": created_at, "parent": parent,
    }
    return manifest, {"w": rng.standard_normal((4, 3)).astype(np.float32), "b": np.zeros(3, np.float32)}


class Local:
    def __init__(self, tmp_path, nats_url):
        self.store = LocalSnapshotStore(tmp_path)
        self.root = tmp_path

    def corrupt(self, snapshot_id, change):
        path = next((self.root / "objects").rglob(f"{snapshot_id}.snap"))
        path.write_bytes(change(path.read_bytes()))

    def close(self):
        pass


class Nats:
    def __init__(self, tmp_path, nats_url):
        self.url, self.bucket = nats_url, f"snaps-{tmp_path.name[-20:]}".replace("_", "-")
        self.store = nats_snapshots(nats_url, bucket=self.bucket)

    def corrupt(self, snapshot_id, change):
        """Rewrite the object under the same name with other bytes, as a bad disk or a bad writer would."""

        async def go():
            nc = await nats.connect(self.url)
            obs = await nc.jetstream().object_store(self.bucket)
            info = await obs.get_info(snapshot_id)
            data = (await obs.get(snapshot_id)).data
            await obs.put(snapshot_id, change(bytes(data)), meta=ObjectMeta(name=snapshot_id, description=info.description))
            await nc.close()

        asyncio.run(go())

    def close(self):
        self.store.close()


@pytest.fixture(params=[Local, Nats], ids=["local", "nats"])
def backend(request, tmp_path, nats_url):
    b = request.param(tmp_path, nats_url)
    yield b
    b.close()


def flip(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0x01
    return bytes(out)


def test_id_is_content_hash_and_round_trips():
    manifest, arrays = content()
    sid, data = pack(manifest, arrays)
    assert pack(manifest, arrays) == (sid, data)
    assert pack(*content(seed=1))[0] != sid
    snap = unpack(sid, data)
    assert snap.manifest == manifest and np.array_equal(snap.arrays["w"], arrays["w"])
    # provenance changes the id but not the content hash
    later = content(created_at=2.0, parent="f" * 32)
    assert pack(*later)[0] != sid and content_hash(*later) == content_hash(manifest, arrays)


def test_save_load_info_list(backend):
    store = backend.store
    a = store.save(*content(0, created_at=1.0))
    b = store.save(*content(1, created_at=2.0, parent=a.id))
    other = store.save(*content(2, created_at=3.0, bot="other"))
    assert (b.parent, b.tenant, b.bot, b.created_at) == (a.id, "acme", "faq", 2.0)
    assert store.info(b.id) == b
    assert [i.id for i in store.list("acme", "faq")] == [a.id, b.id]
    assert [i.id for i in store.list()] == [a.id, b.id, other.id]  # by tenant, bot, age
    assert store.latest("acme", "faq").id == b.id and store.latest("acme", "none") is None
    snap = store.load(b.id)
    assert snap.id == b.id and snap.manifest["parent"] == a.id and snap.size == b.size
    assert np.array_equal(snap.arrays["w"], content(1)[1]["w"])


def test_same_model_content_is_the_same_snapshot(backend):
    store = backend.store
    first = store.save(*content(0, created_at=1.0))
    again = store.save(*content(0, created_at=5.0))  # retrained later on the same data and seed
    assert again == first and len(store.list("acme", "faq")) == 1


def test_unknown_ids(backend):
    for bad in ("0" * 32, "../../etc/passwd", "", "ABC"):
        with pytest.raises(SnapshotNotFound):
            backend.store.load(bad)
        with pytest.raises(SnapshotNotFound):
            backend.store.info(bad)
    backend.store.delete("0" * 32)  # unknown: nothing happens


@pytest.mark.parametrize("change", [flip, lambda d: d[:100]], ids=["flipped-byte", "truncated"])
def test_corrupt_content_is_refused(backend, change):
    info = backend.store.save(*content())
    backend.corrupt(info.id, change)
    with pytest.raises(SnapshotCorrupt) as exc:
        backend.store.load(info.id)
    assert exc.value.code == "corrupt_snapshot" and info.id in str(exc.value)


def test_delete(backend):
    store = backend.store
    a, b = store.save(*content(0, created_at=1.0)), store.save(*content(1, created_at=2.0))
    store.delete(a.id)
    assert [i.id for i in store.list("acme", "faq")] == [b.id]
    with pytest.raises(SnapshotNotFound):
        store.load(a.id)
    assert store.load(b.id).id == b.id


def test_a_local_store_hashes_a_file_on_every_read_whatever_its_stamp_says(tmp_path, monkeypatch):
    """Every load hashes the bytes: a file that rots in place keeping its inode, size and
    modification time is refused, by the store that verified it before and by a new one."""
    import os

    from botyard.snapshots import format as snapshot_format

    hashed = []
    real = snapshot_format.content_id
    monkeypatch.setattr(snapshot_format, "content_id", lambda data: hashed.append(len(data)) or real(data))
    store = LocalSnapshotStore(tmp_path)
    info = store.save(*content(seed=3))
    hashed.clear()
    first = store.load(info.id)
    again = store.load(info.id)  # the unchanged file: hashed again
    assert np.array_equal(first.arrays["w"], again.arrays["w"]) and again.manifest == first.manifest
    assert hashed == [info.size, info.size]
    path = next((tmp_path / "objects").rglob(f"{info.id}.snap"))
    before = os.stat(path)
    with open(path, "r+b") as fh:  # rot in place: same inode, same size ...
        fh.seek(before.st_size // 2)
        byte = fh.read(1)
        fh.seek(before.st_size // 2)
        fh.write(bytes([byte[0] ^ 0x01]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # ... and the same modification time
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    with pytest.raises(SnapshotCorrupt):
        store.load(info.id)
    with pytest.raises(SnapshotCorrupt):
        LocalSnapshotStore(tmp_path).load(info.id)  # and a new store alike


def test_nats_store_fetches_without_blocking_the_caller(tmp_path, nats_url):
    """``fetch_later`` returns at once; the bytes (or the error) come back on the store's loop
    thread, and unpacking them verifies them as ``load`` does."""
    import threading

    backend = Nats(tmp_path, nats_url)
    try:
        info = backend.store.save(*content())
        got: list = []
        done = threading.Event()

        def fetched(data, error):
            got.append((data, error, threading.current_thread().name))
            done.set()

        backend.store.fetch_later(info.id, fetched)
        assert done.wait(10)
        data, error, thread = got[0]
        assert error is None and thread != threading.current_thread().name
        assert unpack(info.id, data).manifest == backend.store.load(info.id).manifest
        got.clear()
        done.clear()
        backend.store.fetch_later("0" * 32, fetched)
        assert done.wait(10)
        assert got[0][0] is None and isinstance(got[0][1], SnapshotNotFound)
        backend.corrupt(info.id, flip)
        got.clear()
        done.clear()
        backend.store.fetch_later(info.id, fetched)
        assert done.wait(10)
        with pytest.raises(SnapshotCorrupt):
            unpack(info.id, got[0][0])
    finally:
        backend.close()
