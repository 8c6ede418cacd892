"""Corrupt snapshots, the three ways an outside fault test found: a plain rollback onto a
corrupt target, bytes that rot in place keeping the file's inode, size and modification
time, and an alias moved (by another process) onto bytes that go bad and come back.

Real stores (local directory, NATS object store), a real SQLite event store, real nodes.
"""

import asyncio
import os
import shutil
import uuid

import nats
import pytest
from nats.js.api import ObjectMeta

from botyard import Client
from botyard.events.store import EventStore
from botyard.ops.admin import Admin
from botyard.ops.stores import nats_snapshots
from botyard.snapshots import LocalSnapshotStore, SnapshotCorrupt
from tests.snapshots.test_aliases import BOT, KEY, TENANT, answers, start_on_good, wait_for
from tests.snapshots.test_store_contract import backend, content, flip  # noqa: F401  (fixtures)


def rot_in_place(path):
    """Flip one byte of the file without changing its inode, size or modification time."""
    before = os.stat(path)
    with open(path, "r+b") as fh:
        fh.seek(before.st_size // 2)
        byte = fh.read(1)[0]
        fh.seek(before.st_size // 2)
        fh.write(bytes([byte ^ 0x01]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)


def history(events, tenant="acme", bot="faq"):
    return events.bot(tenant, bot).state(), len(events.bot_events(tenant, bot))


def test_a_rollback_onto_a_corrupt_snapshot_is_refused_and_records_nothing(backend, tmp_path):  # noqa: F811
    events = EventStore("", tmp_path / "events")
    try:
        admin = Admin(events, backend.store)
        a, b = backend.store.save(*content(0, created_at=1.0)), backend.store.save(*content(1, created_at=2.0))
        good_bytes = []
        admin.promote("acme", "faq", a.id, actor="tests")
        admin.promote("acme", "faq", b.id, actor="tests")
        backend.corrupt(a.id, lambda d: good_bytes.append(d) or flip(d))
        before = history(events)
        for attempt in (
            lambda: admin.rollback("acme", "faq"),  # plain: the previous target is a, which is corrupt
            lambda: admin.rollback("acme", "faq", to=a.id),
            lambda: admin.promote("acme", "faq", a.id),
        ):
            with pytest.raises(SnapshotCorrupt) as exc:
                attempt()
            wire = exc.value.to_wire()
            assert (wire["code"], wire["snapshot"], wire["alias"]) == ("corrupt_snapshot", a.id, "production")
            assert history(events) == before  # nothing recorded, and no other target picked
        assert events.bot("acme", "faq").aliases == {"production": b.id}

        backend.corrupt(a.id, lambda d: good_bytes[0])  # the bytes are good again: the rollback goes through
        moved = admin.rollback("acme", "faq", reason="restored")
        assert (moved["previous"], moved["target"], moved["kind"]) == (b.id, a.id, "rollback")
    finally:
        events.close()


def test_bytes_that_rot_in_place_are_refused_by_the_store_that_verified_them(tmp_path):
    store = LocalSnapshotStore(tmp_path / "snaps")
    events = EventStore("", tmp_path / "events")
    try:
        admin = Admin(events, store)
        a, b = store.save(*content(0, created_at=1.0)), store.save(*content(1, created_at=2.0))
        admin.promote("acme", "faq", a.id, actor="tests")  # both verified by this store once
        admin.promote("acme", "faq", b.id, actor="tests")
        assert store.load(a.id).id == a.id
        rot_in_place(next((tmp_path / "snaps" / "objects").rglob(f"{a.id}.snap")))
        before = history(events)
        with pytest.raises(SnapshotCorrupt):
            store.load(a.id)
        with pytest.raises(SnapshotCorrupt):
            admin.rollback("acme", "faq")
        with pytest.raises(SnapshotCorrupt):
            admin.promote("acme", "faq", a.id, alias="staging")
        assert history(events) == before
    finally:
        events.close()


def rewrite_nats(url, bucket, snapshot_id, change):
    async def go():
        nc = await nats.connect(url)
        obs = await nc.jetstream().object_store(bucket)
        info = await obs.get_info(snapshot_id)
        data = (await obs.get(snapshot_id)).data
        await obs.put(snapshot_id, change(bytes(data)), meta=ObjectMeta(name=snapshot_id, description=info.description))
        await nc.close()

    asyncio.run(go())


def test_a_node_serves_the_old_snapshot_while_the_alias_names_a_corrupt_one_and_converges_once_restored(
    make_node, nats_url, snapshots, tmp_path
):
    good, bad = snapshots["good"], snapshots["bad"]
    own = tmp_path / "snaps"
    shutil.copytree(snapshots["dir"], own)
    path = next((own / "objects").rglob(f"{bad}.snap"))
    original = path.read_bytes()
    node = start_on_good(make_node, snapshots, tmp_path / "d", snapshot_dir=str(own))

    async def probe():
        async with await Client.connect(nats_url) as client:
            return await answers(client)

    assert {a[-1] for a in asyncio.run(probe())} == {good}  # good is in memory
    rot_in_place(path)

    # Another process records the move: admin verification never saw these bytes.
    events = EventStore("", node.config.data_dir)
    try:
        events.change_bot(TENANT, BOT, lambda b: b.promote("production", bad, actor="elsewhere"))
    finally:
        events.close()
    wait_for(lambda: node.stats()["refused"].get(KEY + "@production") == bad)
    assert {a[-1] for a in asyncio.run(probe())} == {good}  # still serving the old one
    stats = node.stats()
    assert stats["diverged"] == 1 and stats["failed_loads"] >= 1
    wait_for(lambda: node.stats()["load_retries"] >= 1, timeout=10)  # it keeps trying
    assert node.served()[KEY] == good and node.stats()["refused"] == {KEY + "@production": bad}

    with open(path, "r+b") as fh:  # the bytes come back (in place, as a repaired disk would)
        fh.write(original)
    wait_for(lambda: node.served()[KEY] == bad, timeout=20)  # without a restart
    stats = node.stats()
    assert stats["refused"] == {} and stats["diverged"] == 0
    assert {a[-1] for a in asyncio.run(probe())} == {bad}


def test_a_node_on_the_nats_store_converges_once_the_object_is_restored(make_node, nats_url, snapshots, tmp_path):
    good, bad = snapshots["good"], snapshots["bad"]
    bucket = f"snaps-{uuid.uuid4().hex[:8]}"
    source = LocalSnapshotStore(snapshots["dir"])
    with nats_snapshots(nats_url, bucket=bucket) as store:
        for info in source.list():
            snap = source.load(info.id)
            assert store.save(snap.manifest, snap.arrays).id == info.id
    kept = []
    node = start_on_good(make_node, snapshots, tmp_path / "d", snapshot_store="nats", snapshot_bucket=bucket)

    async def probe():
        async with await Client.connect(nats_url) as client:
            return await answers(client)

    assert {a[-1] for a in asyncio.run(probe())} == {good}
    rewrite_nats(nats_url, bucket, bad, lambda d: kept.append(d) or flip(d))
    events = EventStore("", node.config.data_dir)
    try:
        events.change_bot(TENANT, BOT, lambda b: b.promote("production", bad, actor="elsewhere"))
    finally:
        events.close()
    wait_for(lambda: node.stats()["refused"].get(KEY + "@production") == bad)
    assert {a[-1] for a in asyncio.run(probe())} == {good} and node.stats()["diverged"] == 1
    rewrite_nats(nats_url, bucket, bad, lambda d: kept[0])
    wait_for(lambda: node.served()[KEY] == bad, timeout=20)
    assert node.stats()["diverged"] == 0 and {a[-1] for a in asyncio.run(probe())} == {bad}
