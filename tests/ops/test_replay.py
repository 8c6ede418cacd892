"""Replay end to end: transcripts, time travel, what-if, the gate, labels, export, snapshots.

Real nats-server, real nodes, real SQLite; the snapshots are really trained: the example
bot (``good``), the same bot trained on rotated labels (``bad``: every intent learns the
next one's examples), and an honest retrain with the tenant's labels.
"""

import asyncio
import shutil
import time

import pytest

from botyard import Client, TurnError
from botyard.events.conversation import conversation_uuid
from botyard.events.store import EventStore
from botyard.models.runtime import Predictor
from botyard.ops.admin import Admin, handle
from botyard.ops.errors import AdminError
from botyard.snapshots.store import LocalSnapshotStore
from tests.conftest import promote

TENANT, BOT = "acme-shop", "support"
KEY = f"{TENANT}/{BOT}"
TRUTH = [
    ("hello", "greeting"),
    ("where is my order A-12345?", "order_status"),
    ("how much is shipping to Austria", "shipping_costs"),
    ("can I pay with paypal", "payment_methods"),
    ("I want to return these shoes", "returns"),
    ("thank you so much", "thanks"),
    ("my payment failed", "payment_problem"),
    ("when do you open on saturday", "opening_hours"),
    ("can I talk to a real person", "talk_to_human"),
    ("what is the weather on mars", "out_of_scope"),
    ("bye", "goodbye"),
]
TEXTS = [t for t, _ in TRUTH]
NEW_PHRASE = ("do you sell gift vouchers", "talk_to_human")
"""A text the example bot was never taught; a label teaches it."""


def start_on_good(make_node, snapshots, tmp_path, **settings):
    data = tmp_path / "data"
    promote("", data, snapshots["dir"], snapshot=snapshots["good"])
    node = make_node(data_dir=str(data), snapshot_dir=str(snapshots["dir"]), **settings)
    assert node.served()[KEY] == snapshots["good"]
    return node


def open_admin(node, snapshots):
    return Admin(EventStore(node.config.events_url, node.config.data_dir), LocalSnapshotStore(snapshots["dir"]))


def talk(nats_url, cid, texts, node=None):
    """Say each text in one conversation; the replies and (with ``node``) the live state after each."""

    async def go():
        replies, states = [], []
        async with await Client.connect(nats_url) as client:
            for text in texts:
                replies.append(await client.say(TENANT, BOT, cid, text))
                if node is not None:
                    states.append(node.conversation_state(TENANT, BOT, cid))
        return replies, states

    return asyncio.run(go())


def written(admin):
    return admin.events.recorder.max_notification_id()


def test_replay_reproduces_every_turn_and_time_travel_equals_the_live_state(make_node, nats_url, snapshots, tmp_path):
    node = start_on_good(make_node, snapshots, tmp_path, conversation_snapshot_every=4)
    cid = "debug-me"
    replies, live = talk(nats_url, cid, TEXTS * 2, node)
    admin = open_admin(node, snapshots)
    try:
        result = admin.replay.transcript(TENANT, BOT, cid)
        assert [t["turn"] for t in result["turns"]] == list(range(1, len(replies) + 1))
        for turn, reply in zip(result["turns"], replies):
            assert (turn["intent"], turn["reply"], turn["confidence"], turn["fallback"]) == (
                reply.intent, reply.text, reply.confidence, reply.fallback
            )
            assert turn["entities"] == reply.entities and turn["snapshot"] == reply.snapshot == snapshots["good"]
            assert turn["node"] == reply.node and turn["latency_ms"] >= 0
        assert any(t["entities"] for t in result["turns"])  # the order number was found and recorded
        assert result["state"] == live[-1]

        # Time travel: the state right after turn N is what the live conversation held then,
        # across the aggregate snapshots the node took every 4 events.
        for n in range(1, len(live) + 1):
            at = admin.replay.transcript(TENANT, BOT, cid, at=n)
            assert at["state"] == live[n - 1], f"state after turn {n}"
            assert len(at["turns"]) == n
        assert admin.replay.transcript(TENANT, BOT, cid, at=0)["state"]["turns"] == 0

        # Against the snapshot that served it, replay answers exactly as the bot did.
        same = admin.whatif(TENANT, BOT, "production", conversation_id=cid)
        assert same["turns"] == len(replies) and same["distinct_texts"] == len(TEXTS)
        assert (same["changed_intent"], same["changed_reply"], same["changes"]) == (0, 0, [])
        assert same["served_by"] == {snapshots["good"]: len(replies)}
    finally:
        admin.events.close()


def test_whatif_against_shuffled_labels_reports_changes_and_writes_nothing(make_node, nats_url, snapshots, tmp_path):
    node = start_on_good(make_node, snapshots, tmp_path)
    talk(nats_url, "early", TEXTS)
    boundary = time.time()
    time.sleep(0.05)
    talk(nats_url, "late", TEXTS[:5])
    admin = open_admin(node, snapshots)
    try:
        before = written(admin)
        states = {c: node.conversation_state(TENANT, BOT, c) for c in ("early", "late")}

        report = admin.whatif(TENANT, BOT, snapshots["bad"])  # every conversation of the bot
        assert report["turns"] == len(TEXTS) + 5 and report["conversations"] == 2
        assert report["changed_intent"] >= report["turns"] // 2
        assert report["changed_turns"] == len(report["changes"]) >= report["changed_intent"]
        change = report["changes"][0]
        assert change["ref"].startswith(f"{KEY}/early#") and change["before"]["intent"] != change["after"]["intent"]
        assert 0 < change["before"]["confidence"] <= 1 and 0 < change["after"]["confidence"] <= 1
        assert change["before"]["snapshot"] == snapshots["good"]

        # Each reported answer is what the bad snapshot really gives on the serving path.
        bad = Predictor.from_snapshot(admin.snapshots.load(snapshots["bad"]))
        for c in report["changes"]:
            assert bad.predict(c["user_text"]).intent == c["after"]["intent"]

        window = admin.whatif(TENANT, BOT, snapshots["bad"], since=boundary)
        assert window["turns"] == 5 and {c["ref"].split("#")[0] for c in window["changes"]} <= {f"{KEY}/late"}
        assert admin.whatif(TENANT, BOT, snapshots["bad"], last=3)["turns"] == 3

        assert written(admin) == before  # replay recorded nothing
        assert {c: node.conversation_state(TENANT, BOT, c) for c in states} == states
        (next_reply,), _ = talk(nats_url, "late", ["thanks"])
        assert next_reply.turn == 6 and next_reply.snapshot == snapshots["good"]
    finally:
        admin.events.close()


def test_labels_teach_the_next_snapshot_and_the_gate_tells_bad_from_honest(make_node, nats_url, snapshots, tmp_path):
    from botyard.training.config import TrainConfig

    # A private copy of the session's store: the retrain below is saved into it.
    from botyard.training.pipeline import train_to_store

    # A private copy of the session's store: the retrain below is saved into it.
    snapshots = {**snapshots, "dir": shutil.copytree(snapshots["dir"], tmp_path / "snapshots")}
    node = start_on_good(make_node, snapshots, tmp_path)
    good = Predictor.from_snapshot(LocalSnapshotStore(snapshots["dir"]).load(snapshots["good"]))
    assert good.predict(NEW_PHRASE[0]).intent != NEW_PHRASE[1]  # not known before the label
    replies, _ = talk(nats_url, "to-label", [*TEXTS, NEW_PHRASE[0]])
    admin = open_admin(node, snapshots)
    try:
        for number, (_, intent) in enumerate([*TRUTH, NEW_PHRASE], start=1):
            admin.label(TENANT, BOT, "to-label", number, intent, actor="tests")
        labels = admin.replay.labels(TENANT, BOT)
        assert len(labels) == len(TRUTH) + 1 and labels[-1]["served_intent"] == replies[-1].intent

        # The gate replays the last turns through the rotated-label snapshot and refuses it.
        moves = len(admin.events.bot_events(TENANT, BOT))
        with pytest.raises(AdminError) as refused:
            admin.promote(TENANT, BOT, snapshots["bad"], gate=True)
        assert refused.value.code == "gate_refused"
        verdict = refused.value.fields["gate"]
        assert verdict["basis"] == "labels" and not verdict["passed"] and verdict["reasons"]
        assert len(admin.events.bot_events(TENANT, BOT)) == moves  # nothing recorded
        assert node.served()[KEY] == snapshots["good"]

        # An honest retrain with the labelled turns: it learned the new phrase, and passes.
        definition = node_definition(admin, snapshots["good"]).with_examples(
            [(item["user_text"], item["intent"]) for item in labels]
        )
        store = LocalSnapshotStore(snapshots["dir"])
        honest, _ = train_to_store(definition, store, TrainConfig(seed=11), parent=snapshots["good"])
        assert Predictor.from_snapshot(store.load(honest.id)).predict(NEW_PHRASE[0]).intent == NEW_PHRASE[1]
        moved = admin.promote(TENANT, BOT, honest.id, gate=True, reason="retrained with labels")
        assert moved["gate"]["passed"] and moved["reason"].startswith("retrained with labels; gate: passed")

        # --force promotes past a refusal, and says so in the record.
        forced = admin.promote(TENANT, BOT, snapshots["bad"], gate=True, force=True)
        assert "refused" in forced["reason"] and "(forced)" in forced["reason"]

        exported = admin.replay.export(TENANT, BOT)
        assert [r["label"] for r in exported] == [i for _, i in TRUTH] + [NEW_PHRASE[1]]
        assert exported[0]["ref"] == f"{KEY}/to-label#1" and exported[0]["user_text"] == TEXTS[0]
    finally:
        admin.events.close()


def node_definition(admin, snapshot_id):
    from botyard.models.definition import BotDefinition

    return BotDefinition.from_dict(admin.snapshots.load(snapshot_id).manifest["definition"])


def test_long_conversations_activate_from_an_aggregate_snapshot(make_node, nats_url, snapshots, tmp_path):
    node = start_on_good(make_node, snapshots, tmp_path, conversation_snapshot_every=10)
    cid = "long"
    talk(nats_url, cid, (TEXTS * 3)[:25])
    before = node.conversation_state(TENANT, BOT, cid)
    store = EventStore(node.config.events_url, node.config.data_dir)
    try:
        def newest():
            found = list(store.snapshots.get(conversation_uuid(TENANT, BOT, cid), desc=True, limit=1))
            return found[0].originator_version if found else None

        deadline = time.monotonic() + 10
        while newest() != 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert newest() == 20  # taken at versions 10 and 20, off the turn path
        node.passivate_all()
        assert node.conversation_state(TENANT, BOT, cid, activate=True) == before
        assert store.load_conversation(TENANT, BOT, cid).state() == before
        assert store.conversation_at(TENANT, BOT, cid, 5).state()["turns"] == 5  # older than any snapshot
    finally:
        store.close()
    (reply,), _ = talk(nats_url, cid, ["thanks"])
    assert reply.turn == 26


def test_replay_over_nats_and_bad_requests_write_nothing(make_node, nats_url, snapshots, tmp_path):
    node = start_on_good(make_node, snapshots, tmp_path)
    talk(nats_url, "remote", TEXTS[:4])
    admin = open_admin(node, snapshots)

    async def go():
        async with await Client.connect(nats_url) as client:
            transcript = await client.admin("replay", tenant=TENANT, bot=BOT, conversation_id="remote", at=2)
            assert transcript["state"]["turns"] == 2 and len(transcript["turns"]) == 2
            report = await client.admin("whatif", tenant=TENANT, bot=BOT, snapshot=snapshots["bad"][:8])
            assert report["turns"] == 4 and report["against"] == snapshots["bad"]
            labelled = await client.admin("label", tenant=TENANT, bot=BOT, conversation_id="remote", turn=1, intent="greeting")
            assert labelled["ref"] == f"{KEY}/remote#1" and labelled["actor"] == "nats"
            page = await client.admin("export", tenant=TENANT, bot=BOT, limit=3)
            assert len(page["turns"]) == 3 and page["total"] == 4 and page["next"] == 3
            rest = await client.admin("export", tenant=TENANT, bot=BOT, after=3)
            assert (await client.admin("export", tenant=TENANT, bot=BOT, limit=10_000))["total"] == 4  # the maximum
            assert len(rest["turns"]) == 1 and rest["next"] is None and page["turns"][0]["label"] == "greeting"

            before = written(admin)
            bad = [
                ("replay", {"conversation_id": "nobody"}, "unknown_conversation"),
                ("replay", {"conversation_id": "remote", "at": 9}, "unknown_turn"),  # past the last turn
                ("replay", {"conversation_id": "remote", "at": -1}, "invalid_request"),
                ("replay", {"conversation_id": "remote", "at": "2"}, "invalid_request"),
                ("export", {"limit": 10_001}, "invalid_request"),  # the README's maximum is 10000
                ("export", {"limit": 0}, "invalid_request"),
                ("export", {"after": -1}, "invalid_request"),
                ("whatif", {"snapshot": "production", "max_changes": 10_001}, "invalid_request"),
                ("whatif", {"snapshot": "f" * 32}, "unknown_snapshot"),
                ("whatif", {"snapshot": "production", "last": 0}, "invalid_request"),
                ("whatif", {"snapshot": "production", "since": "yesterday"}, "invalid_request"),
                ("label", {"conversation_id": "remote", "turn": 99, "intent": "greeting"}, "unknown_turn"),
                ("label", {"conversation_id": "remote", "turn": 1, "intent": "no_such"}, "unknown_intent"),
                ("label", {"conversation_id": "nobody", "turn": 1, "intent": "greeting"}, "unknown_conversation"),
                ("label", {"conversation_id": "remote", "turn": True, "intent": "greeting"}, "invalid_request"),
                ("promote", {"snapshot": snapshots["bad"], "gate": "yes"}, "invalid_request"),
            ]
            for verb, fields, code in bad:
                with pytest.raises(TurnError) as err:
                    await client.admin(verb, tenant=TENANT, bot=BOT, **fields)
                assert err.value.code == code, (verb, fields, err.value.message)
            with pytest.raises(TurnError) as err:
                await client.admin("replay", tenant="nobody", bot=BOT, conversation_id="remote")
            assert err.value.code == "unknown_conversation"
            assert written(admin) == before

    try:
        asyncio.run(go())
    finally:
        admin.events.close()


def test_handle_rejects_a_body_that_is_not_a_map(tmp_path, snapshots):
    events = EventStore("", tmp_path)
    try:
        with pytest.raises(AdminError) as err:
            handle(Admin(events, LocalSnapshotStore(snapshots["dir"])), "whatif", ["not", "a", "map"])
        assert err.value.code == "invalid_request"
    finally:
        events.close()

