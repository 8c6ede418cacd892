"""The turn stream (ops/turn_stream.py): committed turns in JetStream, per tenant, each once
and in commit order, through a SIGKILL between commit and publish, a relay's restart, and
two relays on one store. Real nats-server (one per test: each test's store starts its own
stream), real SQLite and PostgreSQL, real nodes."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import time
import uuid
from datetime import datetime, timezone

import msgpack
import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from botyard import Client, TurnError, protocol
from botyard.actors.bridge import NatsBridge
from botyard.events.conversation import Conversation, conversation_uuid
from botyard.events.store import EventStore
from botyard.ops.config import Config
from botyard.ops.nats_server import EmbeddedNats
from botyard.ops.node import Node
from botyard.ops.turn_stream import NOTIFICATION_HEADER, STREAM, TurnStream, stream_subject
from botyard.snapshots.store import LocalSnapshotStore
from tests.conftest import promote
from tests.ops.test_process import start_node, stop

A, B, BOT = "acme-shop", "beta-co", "support"


@pytest.fixture
def nats_server(tmp_path):
    server = EmbeddedNats(tmp_path / "nats")
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """An event store of this test alone."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    return request.getfixturevalue("own_postgres_url")


# -- reading the stream -----------------------------------------------------------------


async def _read(url: str, subject: str, config: ConsumerConfig) -> list[dict]:
    """Every message a fresh pull consumer gets, as {seq, subject, headers, body}."""
    nc = await nats.connect(url)
    try:
        sub = await nc.jetstream().pull_subscribe(subject, stream=STREAM, config=config)
        out = []
        while True:
            try:
                msgs = await sub.fetch(500, timeout=0.5)
            except asyncio.TimeoutError:  # nats-py raises it plain, or as nats.errors.TimeoutError
                if (await sub.consumer_info()).num_pending == 0:
                    return out
                continue
            for m in msgs:
                out.append({"seq": m.metadata.sequence.stream, "subject": m.subject, "headers": m.headers,
                            "body": json.loads(m.data)})
                await m.ack()
    finally:
        await nc.close()


def read_stream(url: str, subject: str = "botyard.stream.>", **policy) -> list[dict]:
    config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, **(policy or {"deliver_policy": DeliverPolicy.ALL}))
    return asyncio.run(_read(url, subject, config))


def stream_count(url: str) -> int:
    async def go():
        nc = await nats.connect(url)
        try:
            return (await nc.jetstream().stream_info(STREAM)).state.messages
        except nats.js.errors.NotFoundError:
            return 0
        finally:
            await nc.close()

    return asyncio.run(go())


def wait_for_count(url: str, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while (n := stream_count(url)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert n == count, f"the stream holds {n} messages, expected {count}"


def check_once_in_order(messages: list[dict]) -> None:
    """Each event once, the stream in the log's order, the headers matching the body."""
    ids = [m["headers"]["Nats-Msg-Id"] for m in messages]
    assert len(ids) == len(set(ids)), "an event was stored twice"
    positions = [m["body"]["notification_id"] for m in messages]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    for m in messages:
        body = m["body"]
        assert m["subject"] == stream_subject(body["tenant"], body["bot"])
        assert m["headers"][NOTIFICATION_HEADER] == str(body["notification_id"])
        oid = conversation_uuid(body["tenant"], body["bot"], body["conversation_id"])
        assert m["headers"]["Nats-Msg-Id"] == f"{oid}:{body['version']}"


def turns_by_conversation(messages: list[dict]) -> dict[tuple[str, str], list[int]]:
    out: dict[tuple[str, str], list[int]] = {}
    for m in messages:
        if m["body"]["kind"] == "turn":
            out.setdefault((m["body"]["tenant"], m["body"]["conversation_id"]), []).append(m["body"]["turn"])
    return out


# -- two tenants through a node -------------------------------------------------------------


@pytest.fixture
def two_tenants(tmp_path, snapshot_dir):
    """A snapshot store serving the example bot as acme-shop/support and as beta-co/support."""
    source = LocalSnapshotStore(snapshot_dir)
    snap = source.load(source.latest(A, BOT).id)
    store = LocalSnapshotStore(tmp_path / "snapshots")
    store.save(snap.manifest, snap.arrays)
    manifest = copy.deepcopy(dict(snap.manifest))
    manifest["tenant"] = B
    if isinstance(manifest.get("definition"), dict):
        manifest["definition"]["tenant"] = B
    store.save(manifest, snap.arrays)
    return tmp_path / "snapshots"


def test_each_tenant_sees_its_own_turns_once_in_order_from_a_sequence_or_a_time(tmp_path, nats_server, two_tenants):
    data = tmp_path / "data"
    for tenant in (A, B):
        promote("", data, two_tenants, tenant=tenant)
    config = Config.from_mapping({}, nats_url=nats_server, data_dir=str(data), snapshot_dir=str(two_tenants), http_port=-1,
                                 gc_freeze_seconds=0, handoff_wait_seconds=0, turn_stream_poll_seconds=0.02)
    cids = [f"c{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
    texts = ["hello", "where is my order?", "how much is shipping to austria?", "thanks", "bye", "opening hours?"]

    async def talk(tenants, turns):
        async with await Client.connect(nats_server) as client:
            async def one(tenant, cid):
                for text in turns:
                    await client.say(tenant, BOT, cid, text)

            await asyncio.gather(*(one(t, c) for t in tenants for c in cids))
            if A in tenants and len(turns) > 2:  # a proactive message: kind "message"
                body = {"conversation_id": cids[0], "text": "your parcel has shipped", "message_id": "m-1"}
                await client.nc.request(protocol.message_subject(A, BOT), msgpack.packb(body), timeout=5)

    node = Node(config).start()
    try:
        asyncio.run(talk((A, B), texts[:4]))
        wait_for_count(nats_server, 2 * 3 * 4 + 1)
        time.sleep(0.3)
        middle = datetime.now(timezone.utc)
        time.sleep(0.3)
        asyncio.run(talk((A,), texts[4:]))
        wait_for_count(nats_server, 2 * 3 * 4 + 1 + 3 * 2)
        scraped = node.metrics.exposition().decode()
        assert "botyard_turn_stream_published_total 31.0" in scraped and "botyard_turn_stream_lag 0.0" in scraped
        store = EventStore(config.events_url, data)
        try:
            recorded = {(t, c): [e.turn for e in store.turns(t, BOT, c)] for t in (A, B) for c in cids}
            texts_of = {(A, c): [e.user_text for e in store.turns(A, BOT, c)] for c in cids}
        finally:
            store.close()
    finally:
        node.stop()

    everything = read_stream(nats_server)
    check_once_in_order(everything)
    ours = read_stream(nats_server, f"botyard.stream.{A}.>", deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=1)
    assert {m["body"]["tenant"] for m in ours} == {A} and {m["subject"] for m in ours} == {stream_subject(A, BOT)}
    assert ours == [m for m in everything if m["body"]["tenant"] == A]
    assert turns_by_conversation(ours) == {k: v for k, v in recorded.items() if k[0] == A}
    assert all(v == [1, 2, 3, 4, 5, 6] for v in turns_by_conversation(ours).values())
    for c in cids:
        assert [m["body"]["text"] for m in ours if m["body"]["conversation_id"] == c and m["body"]["kind"] == "turn"] == texts_of[(A, c)]
    [message] = [m["body"] for m in ours if m["body"]["kind"] == "message"]
    assert (message["conversation_id"], message["seq"], message["text"]) == (cids[0], 1, "your parcel has shipped")
    turn = next(m["body"] for m in ours if m["body"]["kind"] == "turn")
    assert {"turn_id", "intent", "confidence", "entities", "reply", "fallback", "snapshot", "node", "received_at",
            "dialogue", "recorded_at"} <= set(turn)
    theirs = read_stream(nats_server, f"botyard.stream.{B}.>")
    assert turns_by_conversation(theirs) == {k: v for k, v in recorded.items() if k[0] == B}
    assert all(v == [1, 2, 3, 4] for v in turns_by_conversation(theirs).values())

    later = read_stream(nats_server, f"botyard.stream.{A}.>", deliver_policy=DeliverPolicy.BY_START_TIME,
                        opt_start_time=middle.isoformat())
    assert turns_by_conversation(later) == {(A, c): [5, 6] for c in cids}
    from_seq = read_stream(nats_server, deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=ours[-1]["seq"])
    assert [m["seq"] for m in from_seq] == [ours[-1]["seq"]]


# -- a SIGKILL between commit and publish ---------------------------------------------------


@pytest.mark.slow
def test_a_node_killed_under_load_then_a_new_one_leaves_every_turn_in_the_stream_once(
    tmp_path, nats_server, snapshot_dir, store_url
):
    data = tmp_path / "data"
    promote(store_url, data, snapshot_dir)
    env = {"BOTYARD_NATS_URL": nats_server, "BOTYARD_DATA_DIR": str(data), "BOTYARD_SNAPSHOT_DIR": str(snapshot_dir),
           "BOTYARD_EVENTS_URL": store_url, "BOTYARD_HTTP_PORT": "-1"}
    cids = [f"k{i}-{uuid.uuid4().hex[:6]}" for i in range(6)]
    # A relay that looks twice a second: when the node dies it has published some turns, and
    # surely not its last ones.
    proc = start_node({**env, "BOTYARD_TURN_STREAM_POLL_SECONDS": "0.5"}, tmp_path / "node1.log")
    try:

        async def load_then_kill():
            acked, killed = 0, False
            async with await Client.connect(nats_server, timeout=1) as client:
                js = client.nc.jetstream()

                async def talk(cid):
                    nonlocal acked, killed
                    k = 0
                    while True:
                        try:
                            await client.say(A, BOT, cid, f"where is my order {k}")
                        except TurnError:
                            return
                        acked, k = acked + 1, k + 1
                        if acked >= 80 and acked % 10 == 0 and not killed:
                            try:
                                published = (await js.stream_info(STREAM)).state.messages
                            except (asyncio.TimeoutError, nats.js.errors.NotFoundError):
                                continue
                            if published > 0 and not killed:
                                killed = True
                                os.kill(proc.pid, signal.SIGKILL)  # mid-load: turns committed, not yet published

                await asyncio.gather(*(talk(c) for c in cids))
            return acked

        assert asyncio.run(load_then_kill()) >= 80
        proc.wait(10)
    finally:
        stop(proc)
    before = stream_count(nats_server)

    store = EventStore(store_url, data)
    try:
        committed = {(A, c): [e.turn for e in store.turns(A, BOT, c)] for c in cids}
    finally:
        store.close()
    total = sum(map(len, committed.values()))
    assert before < total, "the killed node had published everything: nothing left to prove"

    proc = start_node(env, tmp_path / "node2.log")
    try:
        wait_for_count(nats_server, total)

        async def one_more():
            async with await Client.connect(nats_server) as client:
                return [await client.say(A, BOT, c, "thanks") for c in cids]

        asyncio.run(one_more())
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    messages = read_stream(nats_server)
    check_once_in_order(messages)
    assert turns_by_conversation(messages) == {k: [*v, len(v) + 1] for k, v in committed.items()}


# -- relays: restarted, and two on one store ------------------------------------------------------


def record(store: EventStore, cid: str, turns: int, *, tenant: str = A) -> None:
    """``turns`` turns of a conversation, committed as a node commits them (one transaction)."""
    conversation = store.load_conversation(tenant, BOT, cid) or Conversation(tenant=tenant, bot=BOT, conversation_id=cid)
    for _ in range(turns):
        n = conversation.turns + 1
        conversation.record_turn(turn=n, turn_id=f"t{n}", user_text=f"text {n}", intent="greet", confidence=0.9,
                                 reply=f"reply {n}", fallback=False, snapshot="0" * 32, node="tests", received_at=time.time(),
                                 entities=[], dialogue=[])
    store.save_all([conversation])


def test_a_restarted_relay_resumes_and_two_relays_on_one_store_store_each_event_once(tmp_path, nats_server, store_url):
    stores = [EventStore(store_url, tmp_path / "data") for _ in range(2)]
    bridges = [NatsBridge([nats_server], name=f"relay-{i}") for i in range(2)]
    relays: list[TurnStream] = []
    cids = [f"r{i}" for i in range(4)]
    try:
        for bridge in bridges:
            bridge.start()
        first = TurnStream(stores[0], bridges[0], poll_seconds=0.01).start()
        relays.append(first)
        for c in cids:
            record(stores[0], c, 3)
        conversation = stores[0].load_conversation(A, BOT, cids[0])
        conversation.message_sent(message_id="m-1", text="shipped", source="shop", seq=1, node="tests", at=time.time())
        conversation.agent_replied(text="hi, Mia here", agent="mia", dialogue=[], delivered=False, node="tests", at=time.time())
        stores[0].save_all([conversation])
        wait_for_count(nats_server, 4 * 3 + 2)
        first.stop()
        assert first.published == 14 and first.lag == 0

        for c in cids:  # committed while no relay runs
            record(stores[0], c, 2)
        relays += [TurnStream(s, b, poll_seconds=0.01).start() for s, b in zip(stores, bridges)]
        for round_ in range(60):  # both relays racing for every commit
            record(stores[round_ % 2], cids[round_ % 4], 1 + round_ % 3)
        wait_for_count(nats_server, 14 + 4 * 2 + 120)
        time.sleep(0.3)  # nothing more comes
        assert stream_count(nats_server) == 14 + 8 + 120
        assert relays[1].published + relays[2].published == 128
        committed = {(A, c): [e.turn for e in stores[0].turns(A, BOT, c)] for c in cids}
    finally:
        for relay in relays:
            relay.stop()
        for bridge in bridges:
            bridge.stop()
        for store in stores:
            store.close()

    messages = read_stream(nats_server)
    check_once_in_order(messages)
    assert turns_by_conversation(messages) == committed
    kinds = [(m["body"]["kind"], m["body"]["text"]) for m in messages if m["body"]["kind"] != "turn"]
    assert kinds == [("message", "shipped"), ("agent", "hi, Mia here")]
    agent = next(m["body"] for m in messages if m["body"]["kind"] == "agent")
    assert (agent["agent"], agent["delivered"], agent["conversation_id"]) == ("mia", False, cids[0])


def test_the_turn_stream_is_on_by_default_and_configurable():
    config = Config.from_mapping({})
    assert (config.turn_stream, config.turn_stream_max_age_days, config.turn_stream_poll_seconds) == (True, 7.0, 0.05)
    off = Config.from_mapping({"BOTYARD_TURN_STREAM": "0", "BOTYARD_TURN_STREAM_MAX_AGE_DAYS": "1.5"})
    assert (off.turn_stream, off.turn_stream_max_age_days) == (False, 1.5)


def test_an_event_too_large_for_the_server_goes_out_small_and_the_stream_goes_on(tmp_path):
    conf = tmp_path / "small.conf"
    conf.write_text("max_payload: 16384\n")
    server = EmbeddedNats(tmp_path / "nats", extra_args=("-c", str(conf)))
    url = server.start()
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}", tmp_path)
    bridge = NatsBridge([url], name="relay")
    relay = None
    try:
        bridge.start()
        relay = TurnStream(store, bridge, poll_seconds=0.01).start()
        record(store, "small", 1)
        conversation = store.load_conversation(A, BOT, "small")
        conversation.message_sent(message_id="m", text="x" * 20_000, source="shop", seq=1, node="tests", at=time.time())
        store.save_all([conversation])
        record(store, "small", 1)
        wait_for_count(url, 3)
        messages = read_stream(url)
    finally:
        if relay is not None:
            relay.stop()
        bridge.stop()
        store.close()
        server.stop()
    check_once_in_order(messages)
    big = messages[1]["body"]
    assert big["too_large"] > 20_000 and "text" not in big
    assert (big["kind"], big["seq"], big["conversation_id"], big["version"]) == ("message", 1, "small", 3)
    assert [m["body"].get("turn") for m in messages] == [1, None, 2]
