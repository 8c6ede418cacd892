"""The dashboard's API against a running node: the activity projection moving with real
turns, conversation search, the review queue, bot definitions as events, training as a
job in a child process, and JSON turn logs. Real nats-server, SQLite, trained snapshots."""

import asyncio
import io
import json
import logging
import time

import yaml

from botyard import Client
from botyard.events.activity import Activity
from botyard.events.store import EventStore
from botyard.ops.logs import setup_logging
from tests.ops.conftest import BOT, TENANT, auth

TINY_BOT = {
    "intents": {
        "greet": {"examples": ["hi", "hello there", "good morning", "hey", "hiya friend", "good evening"],
                  "responses": ["Hello!"]},
        "bye": {"examples": ["bye", "goodbye", "see you later", "farewell", "bye bye", "see you soon"],
                "responses": ["Goodbye!"]},
        "hours": {"examples": ["when are you open", "opening hours", "what time do you close", "are you open today",
                               "hours please", "when do you open"], "responses": ["9 to 5."]},
    },
}


def say_all(nats_url, turns, alias=None):
    async def go():
        async with await Client.connect(nats_url) as client:
            return [await client.say(TENANT, BOT, cid, text, alias=alias) for cid, text in turns]

    return asyncio.run(go())


def test_stats_conversations_and_review_follow_the_event_log(api, nats_url):
    http, own, node = api["http"], auth(api["tokens"][TENANT]), api["node"]
    base = f"/api/v1/tenants/{TENANT}/bots/{BOT}"
    replies = say_all(nats_url, [("web-2", "hello"), ("web-2", "where is my parcel"),
                                 ("web-3", "zxqv blorp wibble"), ("web-3", "do you sell kayaks")])
    stats = http.get(f"{base}/stats", params={"minutes": 5, "step": 1}, headers=own).json()
    assert stats["window"]["turns"] == 7 and stats["total"]["turns"] == 7  # 3 from the fixture + 4
    assert sum(p["turns"] for p in stats["series"]) == 7
    assert sum(stats["window"]["intents"].values()) == 7
    busy = [p for p in stats["series"] if p["turns"]]
    assert busy and all(p["p50_ms"] is not None and 0 <= p["fallback_rate"] <= 1 for p in busy)
    assert [m["kind"] for m in stats["moves"]] == ["promote"]

    listed = http.get(f"{base}/conversations", headers=own).json()["conversations"]
    assert [c["conversation_id"] for c in listed] == ["web-3", "web-2", "web-1"]
    assert listed[0]["turns"] == 2 and listed[0]["last_text"] == "do you sell kayaks"
    found = http.get(f"{base}/conversations", params={"q": "PARCEL"}, headers=own).json()["conversations"]
    assert found == [{"conversation_id": "web-2", "matches": [{"turn": 2, "user_text": "where is my parcel",
                                                                 "intent": replies[1].intent}]}]

    queue = http.get(f"{base}/review", headers=own).json()["turns"]
    in_queue = {(t["conversation_id"], t["turn"]) for t in queue}
    for (cid, turn), r in zip([("web-2", 1), ("web-2", 2), ("web-3", 1), ("web-3", 2)], replies):
        assert ((cid, turn) in in_queue) == (r.fallback or r.confidence < 0.6), (cid, turn, r)
    assert queue and [t["confidence"] for t in queue if not t["fallback"]] == sorted(
        t["confidence"] for t in queue if not t["fallback"])
    first = queue[0]
    assert http.post(f"{base}/labels", json={"conversation_id": first["conversation_id"], "turn": first["turn"],
                                             "intent": "out_of_scope"}, headers=own).status_code == 200
    after = http.get(f"{base}/review", headers=own).json()["turns"]
    assert (first["conversation_id"], first["turn"]) not in {(t["conversation_id"], t["turn"]) for t in after}

    # A rollback shows on the timeline; a projection started afresh reads the same figures.
    http.post(f"{base}/promote", json={"snapshot": api["snapshots"]["bad"]}, headers=own).raise_for_status()
    http.post(f"{base}/rollback", json={}, headers=own).raise_for_status()
    stats = http.get(f"{base}/stats", headers=own).json()
    assert [m["kind"] for m in stats["moves"]] == ["promote", "promote", "rollback"]
    events = EventStore(node.config.events_url, node.config.data_dir)
    try:
        fresh = Activity(events).stats(TENANT, BOT, since=time.time() - 300, until=time.time() + 1)
    finally:
        events.close()
    assert fresh["total"] == stats["total"] and fresh["moves"] == stats["moves"]


def test_bad_requests_get_codes_and_change_nothing(api):
    http, own = api["http"], auth(api["tokens"][TENANT])
    base = f"/api/v1/tenants/{TENANT}/bots/{BOT}"
    for method, path, body, status, code in [
        ("get", f"{base}/definition", None, 404, "unknown_definition"),
        ("post", f"{base}/train", {}, 404, "unknown_definition"),
        ("post", f"{base}/train", {"gate": 0.5}, 400, "invalid_request"),  # a gate needs the cascade
        ("post", f"{base}/train", {"cascade": True, "gate": 2}, 400, "invalid_request"),
        ("post", f"{base}/train", {"tuned": True, "gate": -1}, 400, "invalid_request"),
        ("post", f"{base}/train", {"tuned": "yes please"}, 400, "invalid_request"),
        ("post", f"{base}/train", {"tuned_layers": 2}, 400, "invalid_request"),  # tuned_layers needs tuned
        ("post", f"{base}/train", {"tuned": True, "tuned_layers": 7}, 400, "invalid_request"),
        ("put", f"{base}/definition", {}, 400, "invalid_request"),
        ("put", f"{base}/definition", {"yaml": "intents: [unclosed"}, 400, "invalid_definition"),
        ("put", f"{base}/definition", {"definition": {"intents": {"a": {"examples": ["x"], "responses": ["y"]}}}}, 400,
         "invalid_definition"),
        ("put", f"{base}/definition", {"definition": {**TINY_BOT, "tenant": "other-co"}}, 400, "invalid_definition"),
        ("get", f"/api/v1/tenants/{TENANT}/jobs/nope", None, 404, "unknown_job"),
        ("get", f"{base}/stats", None, 200, None),
        ("get", f"{base}/stats?minutes=0", None, 400, "invalid_request"),
        ("get", f"{base}/conversations?q=", None, 400, "invalid_request"),
    ]:
        r = http.request(method, path, json=body, headers=own)
        assert r.status_code == status, (path, body, r.text)
        if code:
            assert r.json()["error"]["code"] == code, (path, r.text)
    problem = http.put(f"{base}/definition", json={"definition": {"intents": {"a": {"examples": ["x"]}}}}, headers=own)
    assert problem.json()["error"]["field"].startswith("intents")  # the field at fault is named
    assert http.get(f"{base}/jobs", headers=own).json() == {"jobs": []}


def test_a_definition_saved_over_http_trains_as_a_job_and_serves(api_own_store, nats_url):
    api = api_own_store
    http, own, node = api["http"], auth(api["tokens"][TENANT]), api["node"]
    base = f"/api/v1/tenants/{TENANT}/bots/{BOT}"
    saved = http.put(f"{base}/definition", json={"yaml": yaml.safe_dump(TINY_BOT)}, headers=own).json()
    assert saved["changed"] and saved["definition"]["tenant"] == TENANT
    again = http.put(f"{base}/definition", json={"definition": saved["definition"]}, headers=own).json()
    assert not again["changed"] and again["version"] == saved["version"]  # identical: nothing recorded
    assert http.get(f"{base}/definition", headers=own).json()["definition"] == saved["definition"]

    # the context tier: the job's `botyard train --context` reads the examples with the sentence encoder
    # (and `--float16` stores the embedding table in half precision)
    job = http.post(f"{base}/train", json={"epochs": 4, "promote": "staging", "context": True, "float16": True}, headers=own)
    assert job.status_code == 202 and job.json()["state"] in ("queued", "running")
    job_id, seen = job.json()["id"], set()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        state = http.get(f"/api/v1/tenants/{TENANT}/jobs/{job_id}", headers=own).json()
        seen.add((state["state"], state["epoch"]))
        if state["state"] in ("succeeded", "failed"):
            break
        time.sleep(0.3)
    assert state["state"] == "succeeded", state
    assert state["epoch"] == state["epochs"] == 4 and state["loss"] is not None
    assert state["moved"]["alias"] == "staging" and state["moved"]["target"] == state["snapshot"]
    assert http.get(f"{base}/jobs", headers=own).json()["jobs"][0]["id"] == job_id
    manifest = http.get(f"{base}/snapshots/{state['snapshot']}", headers=own).json()["manifest"]
    assert manifest["model"]["context"]["name"] == "all-MiniLM-L6-v2" and manifest["training"]["context"] is True
    assert manifest["training"]["float16"] is True

    # The new snapshot serves the staging alias (the node follows the alias event) and the
    # bot's events hold the definition; production is untouched.
    deadline = time.monotonic() + 20
    while True:
        reply = say_all(nats_url, [("job-1", "see you later")], alias="staging")[0]
        if reply.snapshot == state["snapshot"] or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert reply.snapshot == state["snapshot"] and reply.intent == "bye"
    assert say_all(nats_url, [("job-2", "hello")])[0].snapshot == api["snapshots"]["good"]
    events = EventStore(node.config.events_url, node.config.data_dir)
    try:
        kinds = [type(e).__name__ for e in events.bot_events(TENANT, BOT)]
    finally:
        events.close()
    assert kinds.count("DefinitionSaved") == 1 and kinds[-1] == "AliasMoved"

    # a tuned cascade tuning only the encoder's top layer: the job passes `--tuned-layers 1` on
    job = http.post(f"{base}/train", json={"epochs": 2, "tuned": True, "tuned_layers": 1}, headers=own).json()
    deadline = time.monotonic() + 240
    while (state := http.get(f"/api/v1/tenants/{TENANT}/jobs/{job['id']}", headers=own).json())["state"] not in (
            "succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert state["state"] == "succeeded", state
    manifest = http.get(f"{base}/snapshots/{state['snapshot']}", headers=own).json()["manifest"]
    assert manifest["training"]["tuned_layers"] == 1 and manifest["model"]["cascade"]["model"]["frozen"] == 5


def test_turns_are_logged_as_json_with_their_ids(api, nats_url):
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging("INFO", "json", stream)
    try:
        say_all(nats_url, [("log-1", "hello")])
        time.sleep(0.2)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    records = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    turns = [r for r in records if r["logger"] == "botyard.turns"]
    assert len(turns) == 1, records
    t = turns[0]
    assert (t["tenant"], t["bot"], t["conversation_id"], t["turn"]) == (TENANT, BOT, "log-1", 1)
    assert t["turn_id"] and t["snapshot"] == api["snapshots"]["good"] and t["latency_ms"] >= 0
    assert {"time", "level", "message"} <= set(t)
