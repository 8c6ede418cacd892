"""Node processes as a user runs them: SIGKILL and restart, graceful stop, the CLI."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from botyard import Client, TurnError
from botyard.events.store import EventStore
from tests.conftest import promote

TENANT, BOT = "acme-shop", "support"
ROOT = Path(__file__).resolve().parents[2]


def start_node(env_extra, log_path):
    env = {**os.environ, **env_extra, "BOTYARD_LOG_LEVEL": "INFO"}
    log = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "botyard", "node"], env=env, stdout=subprocess.PIPE, stderr=log)
    line = proc.stdout.readline().decode()  # "botyard node ... ready on ..." once serving
    assert "ready" in line, f"node did not start: {line!r}; see {log_path}"
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def node_env(tmp_path, nats_url, snapshot_dir, events_url):
    promote(events_url, tmp_path / "data", snapshot_dir)
    return {
        "BOTYARD_NATS_URL": nats_url,
        "BOTYARD_DATA_DIR": str(tmp_path / "data"),
        "BOTYARD_SNAPSHOT_DIR": str(snapshot_dir),
        "BOTYARD_EVENTS_URL": events_url,
    }


def test_sigkill_loses_no_acknowledged_turn(node_env, nats_url, tmp_path):
    cids = [f"kill-{uuid.uuid4().hex[:8]}-{i}" for i in range(4)]
    acked: dict[str, list[int]] = {c: [] for c in cids}
    proc = start_node(node_env, tmp_path / "node1.log")
    try:

        async def load(stop_after):
            async with await Client.connect(nats_url, timeout=2) as client:

                async def talk(cid):
                    k = 0
                    while sum(map(len, acked.values())) < stop_after:
                        try:
                            reply = await client.say(TENANT, BOT, cid, f"where is my order {k}")
                        except TurnError:
                            return
                        acked[cid].append(reply.turn)
                        k += 1

                await asyncio.gather(*(talk(c) for c in cids))

        asyncio.run(load(40))
        proc.send_signal(signal.SIGKILL)  # no goodbye: mid-flight turns are simply gone
        proc.wait(10)
    finally:
        stop(proc)
    assert sum(map(len, acked.values())) >= 40

    store = EventStore(node_env["BOTYARD_EVENTS_URL"], node_env["BOTYARD_DATA_DIR"])
    try:
        recorded = {c: [e.turn for e in store.turns(TENANT, BOT, c)] for c in cids}
    finally:
        store.close()
    for cid in cids:
        # every acknowledged turn is there; numbering has no gaps and no repeats
        assert set(acked[cid]) <= set(recorded[cid])
        assert recorded[cid] == list(range(1, len(recorded[cid]) + 1))

    proc = start_node(node_env, tmp_path / "node2.log")
    try:

        async def resume():
            async with await Client.connect(nats_url) as client:
                return [await client.say(TENANT, BOT, c, "thanks") for c in cids]

        replies = asyncio.run(resume())
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    assert [r.turn for r in replies] == [len(recorded[c]) + 1 for c in cids]


@pytest.mark.parametrize("events_url", ["sqlite"], indirect=True)
def test_sigterm_finishes_in_flight_turns(node_env, nats_url, tmp_path):
    proc = start_node(node_env, tmp_path / "node.log")
    cid = uuid.uuid4().hex

    async def go():
        async with await Client.connect(nats_url, timeout=5) as client:
            pending = [asyncio.create_task(client.say(TENANT, BOT, f"{cid}-{i}", "hello")) for i in range(50)]
            await asyncio.sleep(0)
            await asyncio.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            return await asyncio.gather(*pending, return_exceptions=True)

    try:
        results = asyncio.run(go())
        assert proc.wait(20) == 0
    finally:
        stop(proc)
    answered = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, TurnError)]
    assert len(answered) + len(refused) == 50
    assert all(r.turn == 1 for r in answered)
    store = EventStore(node_env["BOTYARD_EVENTS_URL"], node_env["BOTYARD_DATA_DIR"])
    try:
        for r in answered:
            assert len(store.turns(TENANT, BOT, r.conversation_id)) == 1
    finally:
        store.close()


TINY_BOT = """
tenant: tiny
bot: faq
fallback: {threshold: 0.3, response: "Sorry, say that again?"}
intents:
  greet:
    examples: [hi, hello, hey there, good morning, hello bot, hiya]
    responses: ["Hello from tiny!"]
  hours:
    examples: [when are you open, opening hours, what time do you close, are you open today, hours please, open on sunday]
    responses: ["We are open 9 to 5."]
"""


def cli_setup(tmp_path):
    """The tiny bot's file, and an environment for the CLI on embedded defaults in tmp_path."""
    bot_file = tmp_path / "tiny.yml"
    bot_file.write_text(TINY_BOT)
    env = {k: v for k, v in os.environ.items() if k not in ("BOTYARD_NATS_URL", "BOTYARD_EVENTS_URL")}
    env["BOTYARD_DATA_DIR"] = str(tmp_path / "data")
    return bot_file, env


def test_cli_train_demo_and_history(tmp_path):
    bot_file, env = cli_setup(tmp_path)
    cli = [sys.executable, "-m", "botyard"]

    bad = tmp_path / "bad.yml"
    bad.write_text("tenant: tiny\nbot: faq\nintents: {greet: {examples: [hi], responses: [yo]}}\n")
    out = subprocess.run([*cli, "train", str(bad)], env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "bad.yml: intents" in out.stderr
    for extra in (["--gate", "0.5"], ["--cascade", "--gate", "1.5"], ["--tuned", "--gate", "-0.1"]):  # a cascade's, in [0, 1]
        out = subprocess.run([*cli, "train", str(bot_file), *extra], env=env, capture_output=True, text=True)
        assert out.returncode == 2 and "--gate is the cascade's confidence gate" in out.stderr, out.stderr
    for extra in (["--tuned-layers", "2"], ["--tuned", "--tuned-layers", "0"], ["--tuned", "--tuned-layers", "7"]):
        out = subprocess.run([*cli, "train", str(bot_file), *extra], env=env, capture_output=True, text=True)
        assert out.returncode == 2 and "--tuned-layers is how many" in out.stderr, out.stderr

    demo = subprocess.run(
        [*cli, "demo", "--bot-file", str(bot_file), "--conversation", "c1", "--epochs", "5"],
        env=env, input="hello\nwhen are you open\n", capture_output=True, text=True, timeout=180,
    )
    assert demo.returncode == 0, demo.stderr
    assert "Hello from tiny!" in demo.stdout and "We are open 9 to 5." in demo.stdout
    assert "epoch" in demo.stderr  # training showed progress
    assert not (tmp_path / "data" / "nats.url").exists()  # embedded server stopped and cleaned up

    hist = subprocess.run([*cli, "history", "tiny/faq/c1"], env=env, capture_output=True, text=True)
    assert hist.returncode == 0, hist.stderr
    assert "2 turns" in hist.stdout and "when are you open" in hist.stdout and "hours" in hist.stdout

    missing = subprocess.run([*cli, "history", "tiny/faq/nope"], env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and "no conversation" in missing.stderr


def test_cli_snapshots_promote_rollback_diff_gc(tmp_path):
    bot_file, env = cli_setup(tmp_path)

    def cli(*args, ok=True):
        out = subprocess.run([sys.executable, "-m", "botyard", *args], env=env, capture_output=True, text=True, timeout=180)
        assert (out.returncode == 0) == ok, out.stderr
        return out

    def train(*extra):
        out = cli("train", str(bot_file), "--epochs", "3", *extra)
        return json.loads(out.stdout.strip().splitlines()[-1])["snapshot"], out.stdout

    first, said = train()
    assert "tiny/faq@production: - -> " + first[:12] in said  # a bot's first snapshot goes live
    second, said = train("--seed", "1", "--promote", "staging")
    assert "tiny/faq@staging" in said and second != first
    third, _ = train("--seed", "2")  # no alias moves
    again, said = train()  # same data and seed: the same snapshot, nothing moves
    assert again == first and "@" not in said

    listed = json.loads(cli("snapshots", "list", "tiny/faq", "--json").stdout)
    assert [s["id"] for s in listed["snapshots"]] == [first, second, third]
    assert listed["aliases"] == {"production": first, "staging": second}
    assert listed["snapshots"][1]["parent"] == first

    moved = json.loads(cli("snapshots", "promote", "tiny/faq", "staging", "--reason", "looks good", "--json").stdout)
    assert (moved["previous"], moved["target"], moved["reason"]) == (first, second, "looks good")
    back = json.loads(cli("snapshots", "rollback", "tiny/faq", "--json").stdout)
    assert (back["previous"], back["target"], back["kind"]) == (second, first, "rollback")
    refused = cli("snapshots", "rollback", "tiny/faq", ok=False)
    assert refused.returncode == 2 and "no earlier target" in refused.stderr

    log = cli("snapshots", "log", "tiny/faq").stdout
    assert log.count("promote by") == 3 and "rollback by" in log and "looks good" in log

    diff = json.loads(cli("snapshots", "diff", "tiny/faq", first[:8], third[:8], "--json").stdout)
    assert diff["same_definition"] and diff["training"]["seed"] == {"a": 0, "b": 2}

    shown = json.loads(cli("snapshots", "show", "tiny/faq", "production", "--json").stdout)
    assert shown["snapshot"]["id"] == first and shown["manifest"]["intents"] == ["greet", "hours"]

    gc = json.loads(cli("snapshots", "gc", "--keep", "0", "--json").stdout)
    assert gc["deleted"] == [third] and gc["kept"] == 2  # aliased and roll-back-able ones stay
    assert [s["id"] for s in json.loads(cli("snapshots", "list", "tiny/faq", "--json").stdout)["snapshots"]] == [first, second]
    unknown = cli("snapshots", "promote", "tiny/faq", "0" * 32, ok=False)
    assert "no snapshot" in unknown.stderr


def test_cli_replay_label_export_and_gated_promote(tmp_path):
    bot_file, env = cli_setup(tmp_path)

    def cli(*args, ok=True, **kw):
        out = subprocess.run(
            [sys.executable, "-m", "botyard", *args], env=env, capture_output=True, text=True, timeout=180, **kw
        )
        assert (out.returncode == 0) == ok, out.stderr
        return out

    said = "hello\nwhen are you open\nis the shop open on holidays\n"
    cli("demo", "--bot-file", str(bot_file), "--conversation", "c1", "--epochs", "5", input=said)
    served = json.loads(cli("snapshots", "list", "tiny/faq", "--json").stdout)["aliases"]["production"]

    shown = cli("replay", "tiny/faq/c1").stdout
    assert "3 turns" in shown and "Hello from tiny!" in shown and f"snapshot {served[:12]}" in shown and " ms" in shown
    at = json.loads(cli("replay", "tiny/faq/c1", "--at", "1", "--json").stdout)
    assert at["state"]["turns"] == 1 and len(at["turns"]) == 1 and at["state"]["last_intent"] == "greet"
    same = json.loads(cli("replay", "tiny/faq/c1", "--against", "production", "--json").stdout)
    assert (same["turns"], same["changed_intent"], same["changed_reply"]) == (3, 0, 0)
    assert "no conversation" in cli("replay", "tiny/faq/nope", ok=False).stderr

    labelled = cli("label", "tiny/faq/c1#3", "hours").stdout
    assert "labelled tiny/faq/c1#3" in labelled and "as hours" in labelled
    assert "no intent 'weather'" in cli("label", "tiny/faq/c1#1", "weather", ok=False).stderr
    assert "has turns 1 to 3" in cli("label", "tiny/faq/c1#9", "greet", ok=False).stderr
    assert "tiny/faq/c1#3" in cli("labels", "tiny/faq").stdout

    out_file = tmp_path / "turns.jsonl"
    cli("export", "tiny/faq", "-o", str(out_file))
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [r["turn"] for r in rows] == [1, 2, 3] and rows[2]["label"] == "hours" and rows[0]["label"] is None
    assert rows[2]["user_text"] == "is the shop open on holidays"

    trained = cli("train", str(bot_file), "--epochs", "5", "--labels")
    assert "adding 1 labelled turns" in trained.stderr
    retrained = json.loads(trained.stdout.strip().splitlines()[-1])["snapshot"]
    assert retrained != served  # the labelled turn is new training data
    gated = cli("snapshots", "promote", "tiny/faq", retrained, "--gate")
    assert "replay gate: passed on the last 3 turns" in gated.stdout and "gate: passed" in gated.stdout
    log = cli("snapshots", "log", "tiny/faq", "--json").stdout
    assert "gate: passed on 3 turns" in log
