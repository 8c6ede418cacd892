"""Tenants walled off on the bus: a node on its embedded nats-server with authorization on,
two tenants' credentials made by ``botyard tokens issue``, and plain nats-py clients trying
every boundary. On a test bus with authorization off, forged heartbeats and alias
notifications are ignored by the nodes themselves."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid

import msgpack
import nats
import pytest

from botyard import Client, protocol
from botyard.errors import TurnError
from botyard.ops.bus_auth import issue_credentials
from botyard.ops.config import Config
from botyard.ops.node import Node
from tests.conftest import promote

A, B, BOT = "acme-shop", "other-shop", "support"
ADMIN_VERBS = ("list", "show", "log", "promote", "rollback", "diff", "gc", "replay", "whatif", "label", "labels", "export",
               "messages")


def cli(data_dir, snapshot_dir, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "BOTYARD_DATA_DIR": str(data_dir), "BOTYARD_SNAPSHOT_DIR": str(snapshot_dir)}
    return subprocess.run([sys.executable, "-m", "botyard", *args], env=env, capture_output=True, text=True, timeout=60)


async def connect(url: str, creds=None, tenant: str | None = None, errors: list | None = None, **options):
    async def on_error(e) -> None:
        if errors is not None:
            errors.append(str(e))

    if creds is not None:
        options["nkeys_seed_str"] = creds.read_text().strip()
    if tenant is not None:
        options["inbox_prefix"] = f"_INBOX_{tenant}"
    return await nats.connect(url, error_cb=on_error, max_reconnect_attempts=0, allow_reconnect=False, connect_timeout=2,
                              **options)


@pytest.fixture(scope="module")
def bus(tmp_path_factory, snapshot_dir):
    data = tmp_path_factory.mktemp("authed")
    cfg = Config.from_mapping({}, data_dir=str(data), snapshot_dir=str(snapshot_dir), http_port=-1, gc_freeze_seconds=0,
                              heartbeat_seconds=0.25, node_timeout=1.5)
    promote(cfg.events_url, cfg.data_dir, cfg.snapshots_path)
    node = Node(cfg).start()
    made = cli(data, snapshot_dir, "tokens", "issue", A, "--out", str(data / "a.nk"))
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"byt_{A}_") and "_INBOX_acme-shop" in made.stderr
    issue_credentials(node.events, B, "ci", data / "b.nk", "tests")
    deadline = time.monotonic() + 10
    while not all(key in (data / "nats" / "users.conf").read_text() for key in _public_keys(data / "a.nk", data / "b.nk")):
        assert time.monotonic() < deadline, "the node did not write the new users"
        time.sleep(0.05)
    time.sleep(0.3)  # the server's reload
    yield {"node": node, "url": node.nats_url, "a": data / "a.nk", "b": data / "b.nk", "data": data, "snapshots": snapshot_dir}
    node.stop()


def _public_keys(*paths):
    from botyard.ops.bus_auth import public_key

    return [public_key(p.read_text().strip()) for p in paths]


async def refused(nc, errors: list, attempt, subject: str) -> bool:
    """Whether ``attempt`` (a coroutine) was refused: a permission violation naming ``subject``
    reached the error callback (a request also times out or finds no responders)."""
    try:
        await attempt
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError, TurnError):
        pass
    for _ in range(50):
        if any("permissions violation" in e.lower() and subject.lower() in e.lower() for e in errors):  # nats-py lowercases it
            return True
        await asyncio.sleep(0.02)
    return False


def test_an_anonymous_connection_is_refused(bus):
    async def go():
        with pytest.raises(Exception, match="Authorization Violation"):
            await connect(bus["url"])

    asyncio.run(go())


def test_a_tenant_reaches_its_own_bot_and_its_admin_verbs_with_itself_as_the_actor(bus):
    async def go():
        async with await Client.connect(bus["url"], tenant=A, credentials=bus["a"]) as client:
            r = await client.say(A, BOT, f"c-{uuid.uuid4().hex[:8]}", "hello")
            listed = await client.admin("list", bot=BOT)
            sid = listed["snapshots"][0]["id"]
            moved = await client.admin("promote", bot=BOT, snapshot=sid, alias="staging", actor="mallory", force=True)
            log = await client.admin("log", bot=BOT)
            return r, moved, log

    r, moved, log = asyncio.run(go())
    assert r.intent == "greeting"
    assert log["moves"][-1]["actor"] == f"tenant:{A}"  # the credential's tenant, not the field


def test_another_tenants_credential_reaches_nothing_of_a_tenant(bus):
    subjects_to_publish = [
        protocol.turn_subject(A, BOT), protocol.agent_subject(A, BOT), protocol.message_subject(A, BOT),
        *(protocol.admin_subject(v, A) for v in ADMIN_VERBS), *(protocol.admin_subject(v) for v in ADMIN_VERBS),
        f"$JS.API.STREAM.INFO.BOTYARD_TURNS_{A}", f"$JS.API.CONSUMER.CREATE.BOTYARD_TURNS_{A}",
        f"$JS.API.CONSUMER.CREATE.BOTYARD_TURNS_{A}.c.botyard.stream.{A}.>",
    ]
    subjects_to_read = [
        f"botyard.turn.{A}.>", "botyard.turn.>", "_INBOX.>", f"_INBOX_{A}.>", f"botyard.out.{A}.>", f"botyard.handoff.{A}.*",
        f"botyard.action.{A}.>", f"botyard.stream.{A}.>", "botyard.admin.>", ">",
    ]

    async def go():
        errors: list[str] = []
        nc = await connect(bus["url"], bus["b"], B, errors)
        try:
            out = {}
            for subject in subjects_to_publish:
                out[("publish", subject)] = await refused(nc, errors, nc.request(subject, b"{}", timeout=0.3), subject)
            for subject in subjects_to_read:
                out[("subscribe", subject)] = await refused(nc, errors, nc.subscribe(subject), subject)
            # its own subjects work: a turn of its own (it has no bot yet: the node answers unknown_tenant)
            msg = await nc.request(protocol.turn_subject(B, BOT), msgpack.packb({"conversation_id": "c", "text": "hi"}), timeout=3)
            return out, msgpack.unpackb(msg.data)
        finally:
            await nc.close()

    out, own = asyncio.run(go())
    assert [k for k, ok in out.items() if not ok] == [], [k for k, ok in out.items() if not ok]
    assert own["error"]["code"] == "unknown_tenant"


def test_no_tenant_credential_can_beat_announce_an_alias_or_join_the_nodes_queue_group(bus):
    async def go():
        errors: list[str] = []
        nc = await connect(bus["url"], bus["a"], A, errors)
        try:
            beat = protocol.encode_body({"node": "fake", "capacity": 1000, "at": time.time()}, False)
            results = {
                "heartbeat": await refused(nc, errors, nc.publish(protocol.HEARTBEAT_SUBJECT, beat), protocol.HEARTBEAT_SUBJECT),
                "alias": await refused(nc, errors, nc.publish(protocol.alias_subject(A, BOT), b"x"), protocol.alias_subject(A, BOT)),
                "queue group": await refused(nc, errors, nc.subscribe(protocol.turn_subject(A, BOT), queue=protocol.QUEUE_GROUP),
                                             protocol.turn_subject(A, BOT)),
                "forwarding": await refused(nc, errors, nc.publish(protocol.direct_turn_subject("n1", A, BOT), b"x"),
                                            protocol.direct_turn_subject("n1", A, BOT)),
            }
            await nc.flush()
            return results
        finally:
            await nc.close()

    assert asyncio.run(go()) == {"heartbeat": True, "alias": True, "queue group": True, "forwarding": True}


def test_a_revoked_credential_stops_working_within_seconds(bus):
    data = bus["data"]
    made = cli(data, bus["snapshots"], "tokens", "issue", B, "--name", "temp", "--out", str(data / "temp.nk"))
    assert made.returncode == 0, made.stderr

    async def go():
        for _ in range(100):  # issued: usable once the node has reloaded the server's users
            try:
                nc = await connect(bus["url"], data / "temp.nk", B)
                break
            except Exception:
                await asyncio.sleep(0.05)
        revoked = await asyncio.get_running_loop().run_in_executor(
            None, lambda: cli(data, bus["snapshots"], "tokens", "revoke", B, "temp"))
        assert revoked.returncode == 0, revoked.stderr
        started = time.monotonic()
        while nc.is_connected and time.monotonic() - started < 10:
            await asyncio.sleep(0.05)
        gone_after = time.monotonic() - started
        with pytest.raises(Exception, match="Authorization Violation"):
            await connect(bus["url"], data / "temp.nk", B)
        return gone_after, nc.is_connected

    gone_after, still = asyncio.run(go())
    assert not still and gone_after < 10


# -- a test bus with authorization off: the nodes themselves do not trust what they hear ---------------


def test_forged_heartbeats_and_a_forged_alias_notification_are_ignored_by_the_nodes(make_node, nats_url):
    node = make_node()
    cid = f"c-{uuid.uuid4().hex[:8]}"

    async def go():
        async with await Client.connect(nats_url) as client:
            before = await client.say(A, BOT, cid, "hello")
            nc = client.nc
            for capacity in (0, 1000, -1, float("inf"), "lots"):
                beat = {"node": f"forged-{capacity}", "capacity": capacity, "at": time.time()}
                await nc.publish(protocol.HEARTBEAT_SUBJECT, msgpack.packb(beat))
            forged = {"tenant": A, "bot": BOT, "alias": "production", "target": "f" * 32, "version": 999}
            await nc.publish(protocol.alias_subject(A, BOT), msgpack.packb(forged))
            await nc.flush()
            await asyncio.sleep(0.5)
            after = [await client.say(A, BOT, f"{cid}-{i}", "hello") for i in range(5)]
            return before, after

    before, after = asyncio.run(go())
    assert sorted(node.membership.members) == [node.config.node_id]
    assert {r.snapshot for r in after} == {before.snapshot} and {r.node for r in after} == {node.config.node_id}


def test_a_tenant_over_its_turn_rate_gets_rate_limited_and_another_tenant_is_served(make_node, nats_url):
    make_node(tenant_quotas='{"other-shop": {"turns_per_second": 5}}')

    async def go():
        async with await Client.connect(nats_url) as client:
            noisy = [client.say(B, BOT, f"q-{i}", "hello") for i in range(20)]
            quiet = [client.say(A, BOT, f"q-{i}", "hello") for i in range(5)]
            return await asyncio.gather(*noisy, *quiet, return_exceptions=True)

    replies = asyncio.run(go())
    noisy, quiet = replies[:20], replies[20:]
    limited = [e for e in noisy if isinstance(e, TurnError) and e.code == "rate_limited"]
    # a burst of one second's worth (5) passes (to unknown_tenant: it has no bot yet), the rest is refused at once
    assert len(limited) >= 14 and all(isinstance(e, TurnError) and e.code in ("rate_limited", "unknown_tenant") for e in noisy)
    assert all(0 < e.fields["retry_after"] <= 1 for e in limited)
    assert all(not isinstance(r, Exception) and r.intent == "greeting" for r in quiet)


def test_a_tenant_reads_its_own_turn_stream_and_not_anothers(bus):
    cid = f"s-{uuid.uuid4().hex[:8]}"

    async def go():
        async with await Client.connect(bus["url"], tenant=A, credentials=bus["a"]) as client:
            await client.say(A, BOT, cid, "hello")
            await client.say(A, BOT, cid, "thanks")
        errors: list[str] = []
        nc = await connect(bus["url"], bus["a"], A, errors)
        js = nc.jetstream()
        for _ in range(100):  # the relay makes the tenant's stream with its first message
            try:
                sub = await js.subscribe(f"botyard.stream.{A}.>", stream=f"BOTYARD_TURNS_{A}", ordered_consumer=True)
                break
            except nats.js.errors.NotFoundError:
                await asyncio.sleep(0.05)
        seen = []
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            try:
                msg = await sub.next_msg(timeout=1)
            except nats.errors.TimeoutError:
                continue
            body = json.loads(msg.data)
            if body["conversation_id"] == cid:
                seen.append(body["turn"])
        other = await refused(nc, errors, js.subscribe(f"botyard.stream.{B}.>", stream=f"BOTYARD_TURNS_{B}"),
                              f"BOTYARD_TURNS_{B}")
        await nc.close()
        return seen, other

    seen, other = asyncio.run(go())
    assert seen == [1, 2] and other


def test_bots_and_snapshot_bytes_and_conversations_quotas(make_node, nats_url, snapshot_dir):
    node = make_node(tenant_quotas='{"acme-shop": {"bots": 1, "conversations": 3}}')
    sid = node.admin.list(A, BOT)["snapshots"][0]["id"]
    node.admin.promote(A, BOT, sid, alias="staging", force=True)  # the bot it has: allowed
    with pytest.raises(Exception) as refused_bot:
        node.admin.check_quota(A, "second-bot")
    assert refused_bot.value.code == "quota_exceeded" and refused_bot.value.fields["quota"] == "bots"
    small = Config.from_mapping({}, quota_snapshot_bytes=1).quotas
    node.admin.quotas = small
    with pytest.raises(Exception) as refused_bytes:
        node.admin.check_quota(A, BOT)
    assert refused_bytes.value.fields["quota"] == "snapshot_bytes" and refused_bytes.value.fields["used"] > 1

    async def go():
        async with await Client.connect(nats_url) as client:
            for i in range(6):
                await client.say(A, BOT, f"mem-{uuid.uuid4().hex[:6]}-{i}", "hello")

    asyncio.run(go())
    stats = [ref.proxy().stats().get() for ref in node.supervisor.proxy().get_routing().get().conversations]
    assert sum(s["resident"] for s in stats) <= 3


def test_another_tenants_snapshot_is_not_found_and_never_named(make_node, snapshot_dir, tmp_path):
    import shutil

    from botyard.snapshots.store import LocalSnapshotStore

    own = tmp_path / "snapshots"
    shutil.copytree(snapshot_dir, own)
    node = make_node(snapshot_dir=str(own))
    store = LocalSnapshotStore(own)
    mine = store.load(store.latest(A, BOT).id)
    theirs = store.save({**mine.manifest, "tenant": B}, mine.arrays)
    with pytest.raises(Exception) as refused_ref:
        node.admin.resolve(A, BOT, theirs.id)
    assert refused_ref.value.code == "unknown_snapshot" and B not in str(refused_ref.value)
