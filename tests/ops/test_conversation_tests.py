"""Conversation tests (docs/testing.md): the file format and its errors, playing them against
the really trained example bot, ``botyard test`` as a user runs it, ``POST .../tests``, and
``promote --tests``. Real stores throughout; nothing of botyard's own is mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
import yaml

from botyard.events.store import EventStore
from botyard.events.tenant import digest, new_token
from botyard.models.runtime import Predictor
from botyard.ops.admin import Admin
from botyard.ops.cli.testing import report_text
from botyard.ops.conversation_test_runs import run
from botyard.ops.conversation_tests import ConversationTestsError, load, parse
from botyard.ops.errors import AdminError
from botyard.ops.web.http import HttpServer, make_app
from botyard.snapshots.store import LocalSnapshotStore
from tests.conftest import EXAMPLE_BOT, ROOT, promote

TENANT, BOT = "acme-shop", "support"
EXAMPLE_TESTS = ROOT / "examples" / "shop-support.tests.yml"
OPERATOR = "operator-token-of-these-tests"

BROKEN = {
    "conversations": [{
        "name": "order status, expected wrongly",
        "turns": [
            {"user": "where is my order", "form": "order_status", "asked": "order_number"},
            {"user": "it's 4821377", "slots": {"order_number": "4821378", "item": "tent"}, "form": "order_status",
             "handed_off": False},
        ],
    }],
}


@pytest.fixture(scope="module")
def snapshot_id(snapshot_dir):
    return LocalSnapshotStore(snapshot_dir).latest(TENANT, BOT).id


@pytest.fixture(scope="module")
def predictor(snapshot_dir, snapshot_id):
    return Predictor.from_snapshot(LocalSnapshotStore(snapshot_dir).load(snapshot_id))


@pytest.fixture
def admin(tmp_path, snapshot_dir):
    """An Admin on a fresh event store (production: the trained snapshot) and the session's snapshots."""
    promote("", tmp_path / "data", snapshot_dir)
    events = EventStore("", tmp_path / "data")
    yield Admin(events, LocalSnapshotStore(snapshot_dir))
    events.close()


# -- the format -------------------------------------------------------------------------------------


def test_every_problem_of_a_tests_file_is_reported_at_once(tmp_path, example_bot):
    path = tmp_path / "bad.tests.yml"
    path.write_text(
        "conversations:\n"
        "  - name: first\n"
        "    turns:\n"
        "      - user: yes\n"                          # YAML's true
        "        intent: order_stauts\n"               # not an intent of the bot
        "        form: 3\n"
        "        colour: blue\n"
        "      - user: where is my order\n"
        "        slots: {order_numbr: '4821377'}\n"
        "        entities: [{entity: zip, value: 1}]\n"
        "        handed_off: maybe\n"
        "  - name: first\n"                            # a second conversation of that name
        "    turns: []\n"
        "  - turns: [{user: hi, reply_contains: []}]\n"
        "extra: 1\n"
    )
    with pytest.raises(ConversationTestsError) as caught:
        load(path, definition=example_bot)
    error = caught.value
    fields = [p["field"] for p in error.fields["problems"]]
    assert fields == [
        "extra",
        "conversations[0].turns[0].colour",
        "conversations[0].turns[0].user",
        "conversations[0].turns[0].intent",
        "conversations[0].turns[0].form",
        "conversations[0].turns[1].entities[0].entity",
        "conversations[0].turns[1].slots.order_numbr",
        "conversations[0].turns[1].handed_off",
        "conversations[1].turns",
        "conversations[1].name",
        "conversations[2].name",
        "conversations[2].turns[0].reply_contains",
    ]
    assert error.code == "invalid_conversation_tests" and error.fields["field"] == "extra"
    text = str(error)
    assert text.startswith(f"{path}: 12 problems\n")
    assert f"{path}: conversations[0].turns[0].user: YAML reads a bare yes, no, on or off as true/false: quote it ('yes')" in text
    assert "conversations[0].turns[0].intent: the bot has no intent 'order_stauts'; known: delivery_times," in text
    assert "conversations[0].turns[1].slots.order_numbr: the bot has no slot 'order_numbr'; known: country, item, order_number" in text
    assert "conversations[1].name: 'first' is the name of an earlier conversation too" in text
    assert error.to_wire()["problems"][0] == {"field": "extra", "problem": "unknown key; expected 'conversations'"}

    for data, field in [(None, "(top level)"), ({"conversations": {}}, "conversations"), ([], "conversations")]:
        with pytest.raises(ConversationTestsError) as caught:
            parse(data)
        assert caught.value.fields["field"] == field
    with pytest.raises(ConversationTestsError, match="not valid YAML"):
        path.write_text("conversations: [\n")
        load(path)


# -- playing them ---------------------------------------------------------------------------------------


def test_the_example_bots_conversation_tests_pass_on_its_trained_snapshot(predictor, snapshot_id):
    tests = load(EXAMPLE_TESTS, definition=predictor.definition)
    report = run(tests, predictor, snapshot=snapshot_id)
    assert report.passed, report_text(report)
    summary = report.summary
    assert summary["conversations"] == len(tests.conversations) >= 10 and summary["failed"] == 0
    assert summary["turns"] == summary["passed"] == tests.turns
    as_json = json.loads(json.dumps(report.to_dict()))
    assert (as_json["snapshot"], as_json["tenant"], as_json["passed"]) == (snapshot_id, TENANT, True)
    first = as_json["conversations"][0]["turns"]
    assert first[0]["got"]["form"] == "order_status" and first[1]["got"]["slots"] == {"order_number": "4821377"}


def test_a_passing_conversation_plays_from_the_empty_state_and_keeps_it_between_turns(predictor):
    tests = parse([{"name": "number kept", "turns": [
        {"user": "where is my order", "intent": "order_status", "form": "order_status", "asked": "order_number",
         "reply_contains": "order number"},
        {"user": "it's 4821377", "entities": [{"entity": "order_number", "value": 4821377}],  # a number is its text
         "slots": {"order_number": "4821377", "item": None}, "form": None, "asked": None, "handed_off": False},
        {"user": "where is my order", "form": None, "reply_contains": ["order 4821377", "TRACKING"]},  # any case
    ]}], definition=predictor.definition)
    report = run(tests, predictor)
    assert report.passed, report_text(report)
    assert [t.number for t in report.conversations[0].turns] == [1, 2, 3]


def test_a_broken_expectation_fails_with_a_readable_diff(predictor, snapshot_id):
    report = run(parse(BROKEN, definition=predictor.definition), predictor, snapshot=snapshot_id)
    assert not report.passed
    assert report.summary == {"conversations": 1, "turns": 2, "passed": 1, "failed": 1, "conversations_failed": 1}
    second = report.conversations[0].turns[1]
    assert [(f.field, f.expected, f.got) for f in second.failures] == [
        ("slots.order_number", "4821378", "4821377"), ("slots.item", "tent", None), ("form", "order_status", None),
    ]
    text = report_text(report)
    lines = text.splitlines()
    assert lines[0].split() == ["conversation", "turn", "user", "result"]
    assert lines[2].split()[-3:] == ["my", "order", "PASS"] and lines[3].split()[-1] == "FAIL"
    assert (
        "failures:\n"
        "  order status, expected wrongly, turn 2: \"it's 4821377\"\n"
        "    slots.order_number:\n"
        "      - expected: '4821378'\n"
        "      + got:      '4821377'\n"
        "    slots.item:\n"
        "      - expected: 'tent'\n"
        "      + got:      not set\n"
        "    form:\n"
        "      - expected: 'order_status'\n"
        "      + got:      none\n"
    ) in text
    assert lines[-1] == (f"FAILED: 1 conversation, 2 turns: 1 passed, 1 failed (in 1 of 1 conversation); "
                         f"acme-shop/support snapshot {snapshot_id[:12]}")
    failure = report.to_dict()["conversations"][0]["turns"][1]["failures"][0]
    assert failure == {"field": "slots.order_number", "expected": "4821378", "got": "4821377"}


# -- botyard test ----------------------------------------------------------------------------------------


def _cli(env, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "botyard", *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def _env(data, snapshots):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BOTYARD_")}
    return {**clean, "BOTYARD_DATA_DIR": str(data), "BOTYARD_SNAPSHOT_DIR": str(snapshots)}


def test_botyard_test_exits_0_when_all_pass_1_when_any_fails_and_2_on_errors(tmp_path, snapshot_dir, snapshot_id):
    promote("", tmp_path / "data", snapshot_dir)
    env = _env(tmp_path / "data", snapshot_dir)
    broken = tmp_path / "broken.tests.yml"
    broken.write_text(yaml.safe_dump(BROKEN))

    passed = _cli(env, "test", str(EXAMPLE_BOT), str(EXAMPLE_TESTS))
    assert passed.returncode == 0, passed.stdout + passed.stderr
    rows = [line.split("  ") for line in passed.stdout.splitlines()]
    first = [[cell.strip() for cell in row if cell.strip()] for row in rows[2:4]]
    assert first == [["order status asks for the number, then uses it and keeps it", "1", "where is my order", "PASS"],
                     ["order status asks for the number, then uses it and keeps it", "2", "it's 4821377", "PASS"]]
    assert passed.stdout.rstrip().splitlines()[-1].startswith("PASSED: 12 conversations, 43 turns: 43 passed, 0 failed")
    assert "warning" not in passed.stderr  # the snapshot was trained from this very file

    failed = _cli(env, "test", str(EXAMPLE_BOT), str(broken), "--snapshot", snapshot_id[:8])
    assert failed.returncode == 1, failed.stderr
    assert "    slots.order_number:\n      - expected: '4821378'\n      + got:      '4821377'\n" in failed.stdout
    as_json = _cli(env, "test", str(EXAMPLE_BOT), str(broken), "--json")
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["summary"]["failed"] == 1

    invalid = tmp_path / "invalid.tests.yml"
    invalid.write_text("conversations:\n  - name: x\n    turns:\n      - user: hi\n        form: order_stat\n        asked: 7\n")
    bad = _cli(env, "test", str(EXAMPLE_BOT), str(invalid))
    assert bad.returncode == 2 and f"botyard: error: {invalid}: 2 problems" in bad.stderr
    assert "turns[0].form: the bot has no form 'order_stat'; known: order_status, start_return" in bad.stderr

    no_alias = _cli(env, "test", str(EXAMPLE_BOT), str(EXAMPLE_TESTS), "--alias", "staging")
    assert no_alias.returncode == 2 and "has no alias 'staging'" in no_alias.stderr

    untrained = _cli(_env(tmp_path / "empty", tmp_path / "no-snapshots"), "test", str(EXAMPLE_BOT), str(EXAMPLE_TESTS))
    assert untrained.returncode == 2
    assert f"acme-shop/support has no snapshot in the configured stores: run `botyard train {EXAMPLE_BOT}` first" in untrained.stderr

    changed = tmp_path / "changed.yml"
    raw = yaml.safe_load(EXAMPLE_BOT.read_text())
    changed.write_text(yaml.safe_dump({**raw, "description": "another version"}))
    stale = _cli(env, "test", str(changed), str(EXAMPLE_TESTS))
    assert stale.returncode == 0 and f"warning: snapshot {snapshot_id[:12]} was trained from another version of {changed}" in stale.stderr


def test_botyard_snapshots_promote_tests_refuses_on_a_failing_turn_and_passes_otherwise(tmp_path, snapshot_dir, snapshot_id):
    promote("", tmp_path / "data", snapshot_dir)
    env = _env(tmp_path / "data", snapshot_dir)
    broken = tmp_path / "broken.tests.yml"
    broken.write_text(yaml.safe_dump(BROKEN))
    ref = f"{TENANT}/{BOT}"

    refused = _cli(env, "snapshots", "promote", ref, snapshot_id, "--alias", "staging", "--tests", str(broken))
    assert refused.returncode == 2
    assert "conversation tests: REFUSED (1 of 2 turns failed, in 1 of 1 conversation)" in refused.stdout
    assert "botyard: error: tests: refused" in refused.stderr
    moved = _cli(env, "snapshots", "promote", ref, snapshot_id, "--alias", "staging", "--tests", str(EXAMPLE_TESTS))
    assert moved.returncode == 0, moved.stderr
    assert "conversation tests: passed (12 conversations, 43 turns)" in moved.stdout
    assert "@staging: - -> " in moved.stdout and "tests: passed (12 conversations, 43 turns); version" in moved.stdout


# -- the gate ------------------------------------------------------------------------------------------------


def test_promote_with_tests_refuses_like_the_replay_gate_and_records_the_summary(admin, snapshot_id):
    with pytest.raises(AdminError) as caught:
        admin.promote(TENANT, BOT, snapshot_id, alias="staging", tests=BROKEN, actor="tests")
    refusal = caught.value
    assert refusal.code == "gate_refused"
    verdict = refusal.fields["gate"]
    assert verdict["passed"] is False and "replay" not in verdict
    assert verdict["tests"]["summary"] == {"conversations": 1, "turns": 2, "passed": 1, "failed": 1, "conversations_failed": 1}
    assert verdict["reasons"] == [
        "'order status, expected wrongly' turn 2: slots.order_number: expected '4821378', got '4821377'; "
        "slots.item: expected 'tent', got not set; form: expected 'order_status', got none"
    ]
    assert verdict["tests"]["failures"][0]["conversation"] == "order status, expected wrongly"
    assert "staging" not in admin.events.bot(TENANT, BOT).aliases  # a refused request changes nothing

    forced = admin.promote(TENANT, BOT, snapshot_id, alias="staging", tests=BROKEN, force=True, actor="tests")
    assert forced["reason"] == "tests: refused (1 of 2 turns failed, in 1 of 1 conversation) (forced)"

    suite = load(EXAMPLE_TESTS)
    both = admin.promote(TENANT, BOT, snapshot_id, alias="canary", gate=True, tests=suite, reason="release", actor="tests")
    assert both["gate"]["passed"] and both["gate"]["replay"]["passed"] and both["gate"]["tests"]["summary"]["failed"] == 0
    assert both["reason"] == "release; gate: passed (no recorded turns to replay); tests: passed (12 conversations, 43 turns)"
    replay_only = admin.promote(TENANT, BOT, snapshot_id, alias="beta", gate=True, actor="tests")
    assert "tests" not in replay_only["gate"] and "report" in replay_only["gate"]  # the replay gate's verdict, as before

    with pytest.raises(ConversationTestsError, match="the bot has no form 'order_stat'"):
        admin.promote(TENANT, BOT, snapshot_id, alias="other", tests=[{"name": "x", "turns": [{"user": "hi", "form": "order_stat"}]}])


# -- POST .../tests ------------------------------------------------------------------------------------------------


def test_the_http_api_runs_conversation_tests_and_gates_promotions_with_them(tmp_path, snapshot_dir, snapshot_id):
    promote("", tmp_path / "data", snapshot_dir)
    events = EventStore("", tmp_path / "data")
    other = new_token("other-co")
    events.change_tenant("other-co", lambda t: t.issue(digest(other), "tests", "tests"))
    admin = Admin(events, LocalSnapshotStore(snapshot_dir))
    server = HttpServer(make_app(lambda: admin, lambda: b"", OPERATOR), "127.0.0.1", 0).start()
    client = httpx.Client(base_url=server.url, timeout=60)
    own = {"Authorization": f"Bearer {OPERATOR}"}
    base = f"/api/v1/tenants/{TENANT}/bots/{BOT}"
    conversations = yaml.safe_load(EXAMPLE_TESTS.read_text())["conversations"]
    try:
        ok = client.post(f"{base}/tests", json={"conversations": conversations}, headers=own)
        assert ok.status_code == 200 and ok.json()["passed"] is True and ok.json()["snapshot"] == snapshot_id
        assert ok.json()["summary"] == {"conversations": 12, "turns": 43, "passed": 43, "failed": 0, "conversations_failed": 0}
        failing = client.post(f"{base}/tests", json={**BROKEN, "snapshot": snapshot_id[:8]}, headers=own).json()
        assert failing["passed"] is False and failing["conversations"][0]["turns"][1]["failures"][2] == {
            "field": "form", "expected": "order_status", "got": None}

        bad = client.post(f"{base}/tests", json={"conversations": [{"name": "x", "turns": [{"user": True, "form": "nope"}]}]},
                          headers=own)
        assert bad.status_code == 400
        error = bad.json()["error"]
        assert error["code"] == "invalid_conversation_tests" and error["field"] == "conversations[0].turns[0].user"
        assert [p["field"] for p in error["problems"]] == ["conversations[0].turns[0].user", "conversations[0].turns[0].form"]
        for body, status, code in [
            ({"snapshot": snapshot_id}, 400, "invalid_request"),  # no conversations
            ({"conversations": conversations, "snapshot": snapshot_id, "alias": "production"}, 400, "invalid_request"),
            ({"conversations": conversations, "alias": "staging"}, 404, "unknown_alias"),
            ({"conversations": conversations, "alias": "bad name!"}, 400, "invalid_request"),
            ({"conversations": "hello"}, 400, "invalid_conversation_tests"),
        ]:
            r = client.post(f"{base}/tests", json=body, headers=own)
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), (body, r.text)
        forbidden = client.post(f"{base}/tests", json={"conversations": conversations}, headers={"Authorization": f"Bearer {other}"})
        assert forbidden.status_code == 403

        refused = client.post(f"{base}/promote", json={"snapshot": snapshot_id, "alias": "staging", "tests": BROKEN}, headers=own)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "gate_refused"
        assert refused.json()["error"]["gate"]["tests"]["summary"]["failed"] == 1
        moved = client.post(f"{base}/promote", json={"snapshot": snapshot_id, "alias": "staging", "tests": conversations}, headers=own)
        assert moved.status_code == 200 and moved.json()["gate"]["tests"]["passed"] is True
        assert moved.json()["reason"] == "tests: passed (12 conversations, 43 turns)"
    finally:
        client.close()
        server.stop()
        events.close()
