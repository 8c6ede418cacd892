"""Admin replies over NATS come in pages that fit the server's max_payload, and a reply that
cannot fit is a ``reply_too_large`` error, never silence.

Real nats-servers (the module's, with the default 1 MiB max_payload, and one configured
with 16 KiB), real nodes, real SQLite. The turns are written straight into the node's
event store as a node commits them (``Conversation.record_turn``, ``save_all``), which is
what a node's conversation actors would leave behind, only faster.
"""

from __future__ import annotations

import asyncio
import json
import time

import msgpack
import nats
import pytest

from botyard import Client, TurnError
from botyard.actors.bridge import NatsBridge, header_bytes
from botyard.actors.outbox import ok_reply
from botyard.events.conversation import Conversation
from botyard.events.store import EventStore
from botyard.ops.admin import Admin
from botyard.ops.config import Config
from botyard.ops.nats_server import EmbeddedNats
from botyard.ops.node import Node
from botyard.protocol import admin_subject
from botyard.snapshots.store import LocalSnapshotStore
from tests.conftest import promote

TENANT, BOT = "acme-shop", "support"
TEXT_BYTES = 4096
LONG = 1000
"""Turns of the long conversation (replay); with 190 conversations of 100, 20,000 turns."""
SMALL_MAX_PAYLOAD = 16 * 1024


def text_of(cid: str, turn: int, size: int = TEXT_BYTES) -> str:
    head = f"{cid}#{turn} "
    return head + ("lorem ipsum dolor sit amet " * (size // 27 + 1))[: size - len(head)]


def record(data_dir, conversations, size=TEXT_BYTES, start=None):
    """Write [(conversation id, turns)] into the event store; the refs in recording order."""
    events = EventStore("", data_dir)
    now = time.time() - 3600 if start is None else start
    refs, batch, pending = [], [], 0
    try:
        for cid, turns in conversations:
            conv = Conversation(tenant=TENANT, bot=BOT, conversation_id=cid)
            batch.append(conv)
            for turn in range(1, turns + 1):
                conv.record_turn(
                    turn=turn, turn_id=None, user_text=text_of(cid, turn, size), intent="greeting", confidence=0.9,
                    reply="Hello!", fallback=False, snapshot="0" * 32, node="test-writer",
                    received_at=now + len(refs) * 0.001, entities=[],
                )
                refs.append(f"{TENANT}/{BOT}/{cid}#{turn}")
                pending += 1
                if pending >= 1000:  # commit in recording order: every conversation so far
                    events.save_all(batch)
                    batch, pending = [conv], 0
        events.save_all(batch)
    finally:
        events.close()
    return refs


def start_node(nats_url, data_dir, snapshot_dir, **settings) -> Node:
    config = Config.from_mapping(
        {}, nats_url=nats_url, data_dir=str(data_dir), snapshot_dir=str(snapshot_dir), gc_freeze_seconds=0,
        http_port=-1, **settings,
    )
    return Node(config).start()


class Spy:
    """Every reply to any client request on the server (``_INBOX.>``), by its size on the
    wire: what the server counts against max_payload."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sizes: list[int] = []

    async def __aenter__(self) -> "Spy":
        self.nc = await nats.connect(self.url)
        await self.nc.subscribe("_INBOX.>", cb=self._seen)
        await self.nc.flush()
        return self

    async def _seen(self, msg) -> None:
        self.sizes.append(len(msg.data) + header_bytes(msg.headers))

    async def __aexit__(self, *exc) -> None:
        await self.nc.flush()
        await asyncio.sleep(0.2)
        await self.nc.close()


@pytest.fixture(scope="module")
def long_turns(nats_url, tmp_path_factory):
    """A node whose store holds 20,000 turns of 4 KB texts: 190 conversations of 100 turns
    and one of 1,000 (``long``), recorded in that order."""
    data = tmp_path_factory.mktemp("paging-data")
    started = time.perf_counter()
    refs = record(data, [*((f"c{i:03d}", 100) for i in range(190)), ("long", LONG)])
    wrote = time.perf_counter() - started
    # no turn stream: its relay's JetStream acks would be replies on _INBOX.> too, beside the spied pages
    node = start_node(nats_url, data, tmp_path_factory.mktemp("no-snapshots"), turn_stream=False)
    yield {"node": node, "refs": refs, "wrote_s": wrote}
    node.stop()


def test_an_export_of_20000_turns_of_4kb_comes_whole_in_pages_under_max_payload(long_turns, nats_url):
    refs = long_turns["refs"]
    assert len(refs) == 20_000

    async def go():
        async with Spy(nats_url) as spy, await Client.connect(nats_url) as client:  # the default 5 s timeout
            started = time.perf_counter()
            rows = [row async for row in client.export_all(TENANT, BOT, limit=10_000)]
            took = time.perf_counter() - started
            first = await client.admin("export", tenant=TENANT, bot=BOT, limit=10_000)
            json_reply = await client.nc.request(
                admin_subject("export"), json.dumps({"tenant": TENANT, "bot": BOT, "after": 5000, "limit": 10_000}).encode(),
                headers={"Content-Type": "application/json"}, timeout=5,
            )
            return rows, took, first, json_reply, client.nc.max_payload, spy

    rows, took, first, json_reply, max_payload, spy = asyncio.run(go())
    print(f"\nwrote 20,000 turns in {long_turns['wrote_s']:.1f} s; exported in {took:.1f} s, {len(spy.sizes)} replies")
    assert [r["ref"] for r in rows] == refs  # every turn, exactly once, in recording order
    assert all(r["user_text"] == text_of(r["conversation_id"], r["turn"]) for r in rows[::97])
    assert len(rows[0]["user_text"].encode()) == TEXT_BYTES
    assert max_payload == 1024 * 1024
    pages = len(spy.sizes) - 2
    assert pages >= 20_000 * TEXT_BYTES // max_payload  # paged by bytes, well under limit=10000 per page
    assert all(size <= max_payload for size in spy.sizes), max(spy.sizes)
    assert min(spy.sizes[:-3]) > max_payload * 0.9  # and each page is filled
    assert first["total"] == 20_000 and first["next"] == len(first["turns"]) < 10_000

    body = json.loads(json_reply.data)["result"]  # a JSON page is measured as JSON
    assert json_reply.headers["Content-Type"] == "application/json"
    assert body["turns"][0]["ref"] == refs[5000] and body["next"] == 5000 + len(body["turns"])
    assert len(json_reply.data) + header_bytes(json_reply.headers) <= max_payload


def test_a_replay_of_a_long_conversation_comes_in_pages(long_turns, nats_url):
    async def go():
        async with Spy(nats_url) as spy, await Client.connect(nats_url) as client:
            whole = [t async for t in client.pages("replay", "turns", tenant=TENANT, bot=BOT, conversation_id="long")]
            pages, after = [], 0
            while after is not None:
                page = await client.admin("replay", tenant=TENANT, bot=BOT, conversation_id="long", at=600, after=after)
                pages.append(page)
                after = page["next"]
            seven = await client.admin("replay", tenant=TENANT, bot=BOT, conversation_id="long", after=10, limit=7)
            return whole, pages, seven, client.nc.max_payload, spy

    whole, pages, seven, max_payload, spy = asyncio.run(go())
    assert [t["turn"] for t in whole] == list(range(1, LONG + 1))
    assert all(t["user_text"] == text_of("long", t["turn"]) for t in whole)
    assert len(pages) >= 600 * TEXT_BYTES // max_payload + 1
    assert [t["turn"] for p in pages for t in p["turns"]] == list(range(1, 601))  # time travel, paged
    assert all(p["state"]["turns"] == 600 and p["at"] == 600 for p in pages)
    assert [t["turn"] for t in seven["turns"]] == list(range(11, 18)) and seven["next"] == 17
    assert all(size <= max_payload for size in spy.sizes)


@pytest.fixture(scope="module")
def small_nats(tmp_path_factory):
    """A nats-server that takes messages of at most 16 KiB."""
    root = tmp_path_factory.mktemp("small-nats")
    conf = root / "small.conf"
    conf.write_text(f"max_payload: {SMALL_MAX_PAYLOAD}\n")
    server = EmbeddedNats(root / "store", extra_args=("-c", str(conf)))
    yield server.start()
    server.stop()


def test_an_item_that_cannot_fit_is_reply_too_large_and_lists_page_on_a_small_server(small_nats, tmp_path):
    data = tmp_path / "data"
    refs = record(data, [("small", 40)], size=1000)
    refs += record(data, [("huge", 1)], size=20_000)  # one turn larger than the server takes
    events = EventStore("", data)
    try:
        for n in range(1, 41):
            text = text_of("small", n, 1000)
            events.label_turn(TENANT, BOT, lambda lb, n=n, text=text: lb.label("small", n, text, "thanks", "greeting", "0" * 32, "t"))
    finally:
        events.close()
    (tmp_path / "no-snapshots").mkdir()
    node = start_node(small_nats, data, tmp_path / "no-snapshots")
    try:
        async def go():
            async with Spy(small_nats) as spy, await Client.connect(small_nats) as client:
                rows, after, refused = [], 0, None
                while after is not None:
                    try:
                        page = await client.admin("export", tenant=TENANT, bot=BOT, after=after)
                    except TurnError as exc:
                        refused = exc
                        break
                    rows += page["turns"]
                    after = page["next"]
                with pytest.raises(TurnError) as replay:
                    await client.admin("replay", tenant=TENANT, bot=BOT, conversation_id="huge")
                labels = [x async for x in client.pages("labels", "labels", tenant=TENANT, bot=BOT)]
                small = await client.admin("replay", tenant=TENANT, bot=BOT, conversation_id="small")
                return rows, after, refused, replay.value, labels, small, client.nc.max_payload, spy

        rows, after, refused, replay, labels, small, max_payload, spy = asyncio.run(go())
    finally:
        node.stop()
    assert max_payload == SMALL_MAX_PAYLOAD
    assert [r["ref"] for r in rows] == refs[:40] and after == 40  # 40 fitted, a few a page; then the huge one
    assert rows[0]["label"] == "thanks"
    for err in (refused, replay):
        assert err.code == "reply_too_large"
        assert err.fields["max_payload"] == SMALL_MAX_PAYLOAD < err.fields["size"]
    assert [(x["conversation_id"], x["turn"]) for x in labels] == [("small", n) for n in range(1, 41)]
    assert small["next"] is not None and len(small["turns"]) < 40  # a page of what fits, not all 40
    assert len(spy.sizes) >= 9 and all(size <= SMALL_MAX_PAYLOAD for size in spy.sizes)  # 4 + 2 + 3 + 1 replies


def test_the_bridge_answers_any_reply_over_max_payload_with_reply_too_large(small_nats):
    bridge = NatsBridge([small_nats], name="paging-test")
    bridge.start()
    try:
        async def go():
            nc = await nats.connect(small_nats)
            got = []
            for as_json in (False, True):
                inbox = nc.new_inbox()
                sub = await nc.subscribe(inbox)
                await nc.flush()
                big = ok_reply(inbox, as_json, {"ok": True, "result": {"blob": "x" * SMALL_MAX_PAYLOAD}})
                bridge.send([big])
                msg = await sub.next_msg(timeout=5)
                got.append((len(big.body), msg))
            await nc.close()
            return got

        got = asyncio.run(go())
    finally:
        bridge.stop()
    for (size, msg), as_json in zip(got, (False, True)):
        body = json.loads(msg.data) if as_json else msgpack.unpackb(msg.data)
        err = body["error"]
        assert err["code"] == "reply_too_large" and err["max_payload"] == SMALL_MAX_PAYLOAD
        assert err["size"] == size + (44 if as_json else 0)  # the JSON reply's headers count


def test_whatif_changes_come_in_pages_of_one_report(small_nats, snapshots, tmp_path):
    from tests.ops.test_replay import TEXTS

    data = tmp_path / "data"
    promote("", data, snapshots["dir"], snapshot=snapshots["good"])
    node = start_node(small_nats, data, snapshots["dir"])
    try:
        async def go():
            async with await Client.connect(small_nats) as client:
                for round_ in range(12):
                    for text in TEXTS:
                        await client.say(TENANT, BOT, f"w{round_}", text)
                async with Spy(small_nats) as spy:
                    pages, after = [], 0
                    while after is not None:
                        page = await client.admin("whatif", tenant=TENANT, bot=BOT, snapshot=snapshots["bad"], after=after)
                        pages.append(page)
                        after = page["next"]
                return pages, spy

        pages, spy = asyncio.run(go())
        admin = Admin(EventStore("", data), LocalSnapshotStore(snapshots["dir"]))
        try:
            whole = admin.whatif(TENANT, BOT, snapshots["bad"], max_changes=100)
        finally:
            admin.events.close()
    finally:
        node.stop()
    assert len(pages) >= 2 and all(size <= SMALL_MAX_PAYLOAD for size in spy.sizes)
    assert [c for p in pages for c in p["changes"]] == whole["changes"]
    assert all(p["changed_turns"] == whole["changed_turns"] and p["turns"] == 12 * len(TEXTS) for p in pages)
