"""The admin HTTP API and /metrics against a running node: real nats-server, real SQLite,
really trained snapshots; tenant isolation on every route; a schema-driven fuzz run."""

import asyncio
import re

import pytest

from botyard import Client
from tests.ops.conftest import BOT, TENANT, auth


def test_the_api_does_what_the_cli_does(api):
    http, own = api["http"], auth(api["tokens"][TENANT])
    good, bad = api["snapshots"]["good"], api["snapshots"]["bad"]
    base = f"/api/v1/tenants/{TENANT}/bots/{BOT}"

    bots = http.get(f"/api/v1/tenants/{TENANT}/bots", headers=own).json()
    assert bots["bots"] == [{"bot": BOT, "aliases": {"production": good}}]
    listed = http.get(f"{base}/snapshots", headers=own).json()
    assert {s["id"] for s in listed["snapshots"]} == {good, bad}
    assert http.get(f"{base}/snapshots/{bad[:8]}", headers=own).json()["snapshot"]["id"] == bad

    transcript = http.get(f"{base}/conversations/web-1", headers=own).json()
    assert [t["user_text"] for t in transcript["turns"]] == ["hello", "where is my order?", "bye"]
    assert http.get(f"{base}/conversations/web-1", params={"at": 1}, headers=own).json()["state"]["turns"] == 1
    whatif = http.post(f"{base}/whatif", json={"snapshot": bad}, headers=own).json()
    assert whatif["turns"] == 3 and whatif["changed_intent"] >= 1

    labelled = http.post(f"{base}/labels", json={"conversation_id": "web-1", "turn": 1, "intent": "greeting"}, headers=own)
    assert labelled.status_code == 200 and labelled.json()["actor"] == "http"
    assert http.get(f"{base}/labels", headers=own).json()["labels"][0]["intent"] == "greeting"
    assert http.get(f"{base}/turns", params={"limit": 2}, headers=own).json()["next"] == 2

    refused = http.post(f"{base}/promote", json={"snapshot": bad, "gate": True}, headers=own)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "gate_refused"
    moved = http.post(f"{base}/promote", json={"snapshot": bad, "reason": "try it"}, headers=own).json()
    assert (moved["previous"], moved["target"], moved["actor"]) == (good, bad, "http")
    back = http.post(f"{base}/rollback", json={"reason": "worse"}, headers=own).json()
    assert back["target"] == good and back["kind"] == "rollback"
    assert [m["kind"] for m in http.get(f"{base}/log", headers=own).json()["moves"]][-2:] == ["promote", "rollback"]
    assert http.get(f"{base}/diff", params={"a": good, "b": bad}, headers=own).json()["a"] == good

    # Structured errors, with the status the code implies.
    for method, path, body, status, code in [
        ("get", f"{base}/conversations/nobody", None, 404, "unknown_conversation"),
        ("get", f"{base}/snapshots/{'0' * 32}", None, 404, "unknown_snapshot"),
        ("post", f"{base}/rollback", {"to": "ffffff"}, 404, "unknown_snapshot"),
        ("post", f"{base}/labels", {"conversation_id": "web-1", "turn": 9, "intent": "greeting"}, 404, "unknown_turn"),
        ("post", f"{base}/labels", {"conversation_id": "web-1", "turn": "x", "intent": "greeting"}, 400, "invalid_request"),
        ("post", f"{base}/promote", {"snapshot": good}, 409, "alias_unchanged"),
        ("post", f"{base}/whatif", [1, 2], 400, "invalid_request"),
        ("get", f"{base}/conversations/web-1?at=4", None, 404, "unknown_turn"),  # past the last turn
        ("get", f"{base}/conversations/web-1?at=-1", None, 400, "invalid_request"),
        ("get", f"{base}/turns?limit=10001", None, 400, "invalid_request"),  # the maximum is 10000
        ("get", f"{base}/turns?after=-1", None, 400, "invalid_request"),
    ]:
        r = http.request(method, path, json=body, headers=own)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (path, body, r.text)
    assert http.get(f"{base}/conversations/web-1", params={"at": 3}, headers=own).json()["state"]["turns"] == 3
    assert http.get(f"{base}/turns", params={"limit": 10_000}, headers=own).json()["total"] == 3


def test_a_tenant_token_reaches_nothing_of_another_tenant(api):
    http, schema = api["http"], api["http"].get("/openapi.json").json()
    other = auth(api["tokens"]["other-co"])
    paths = [(p, m) for p, ops in schema["paths"].items() if p.startswith("/api/v1/tenants/") for m in ops]
    assert len(paths) >= 20
    bodies = {
        "promote": {"snapshot": api["snapshots"]["bad"]}, "rollback": {}, "whatif": {"snapshot": "production"},
        "labels": {"conversation_id": "web-1", "turn": 1, "intent": "greeting"},
        "definition": {"yaml": "intents: {}"}, "train": {}, "tokens": {}, "revoke": {"token": api["tokens"][TENANT]},
    }
    for path, method in paths:
        url = (path.replace("{tenant}", TENANT).replace("{bot}", BOT).replace("{ref}", "production")
               .replace("{conversation_id}", "web-1").replace("{job_id}", "0123456789abcdef"))
        body = bodies.get(path.rsplit("/", 1)[-1]) if method in ("post", "put") else None
        params = {"a": "production", "b": "production"} if path.endswith("/diff") else None
        for headers, status in ((other, 403), ({}, 401), (auth("byt_acme-shop_" + "0" * 48), 401)):
            r = http.request(method, url, json=body, params=params, headers=headers)
            assert r.status_code == status, (method, url, r.text)
            assert r.json()["error"]["code"] in ("forbidden", "unauthorized")
    # The bot list across tenants shows each token its own tenant's bots only.
    assert http.get("/api/v1/bots", headers=other).json()["bots"] == []
    assert [b["bot"] for b in http.get("/api/v1/bots", headers=auth(api["tokens"][TENANT])).json()["bots"]] == [BOT]
    assert http.get("/api/v1/bots").status_code == 401
    # Nothing moved, and the owner and the operator still get through.
    for token in (api["tokens"][TENANT], api["operator"]):
        r = http.get(f"/api/v1/tenants/{TENANT}/bots/{BOT}/log", headers=auth(token))
        assert r.status_code == 200 and len(r.json()["moves"]) == 1


def test_metrics_count_turns_errors_and_the_cache(api, nats_url):
    http = api["http"]

    def value(text, name, **labels):
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # the exposition sorts labels
        m = re.search(rf"^{name}(?:\{{{re.escape(want)}\}})? ([0-9.e+-]+)$", text, re.M) if want else re.search(
            rf"^{name} ([0-9.e+-]+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    before = http.get("/metrics").text
    assert "botyard_turn_seconds_bucket" in before and "botyard_classify_seconds_count" in before

    async def more():
        async with await Client.connect(nats_url) as client:
            for i in range(5):
                await client.say(TENANT, BOT, f"m-{i}", "hello")
            with pytest.raises(Exception):  # noqa: B017 - which error is the next assertions' business
                await client.say(TENANT, "no-such-bot", "m-x", "hello")

    asyncio.run(more())
    import time

    time.sleep(1.5)  # one heartbeat, for the figures read from it
    after = http.get("/metrics").text
    ok = {"kind": "turn", "code": "ok"}
    assert value(after, "botyard_replies_total", **ok) - value(before, "botyard_replies_total", **ok) == 5
    assert value(after, "botyard_replies_total", kind="turn", code="unknown_bot") >= 1
    assert value(after, "botyard_turn_seconds_count") >= value(before, "botyard_turn_seconds_count") + 6
    assert value(after, "botyard_classify_seconds_count") >= 8
    assert value(after, "botyard_model_cache_hits_total") >= 5 and value(after, "botyard_models_resident") >= 1
    assert value(after, "botyard_nats_reconnects_total") == 0 and "botyard_actor_restarts_total" in after
    assert "tenant=" not in after and "acme" not in after  # no unbounded labels


def test_fuzzing_the_api_from_its_openapi_document_finds_no_5xx(api):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    http = api["http"]
    base_url = str(http.base_url).rstrip("/")
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    token = api["tokens"][TENANT]
    failures, statuses = [], []
    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=op.as_strategy())
        def run(case):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
            if "tenant" in (case.path_parameters or {}):
                case.path_parameters["tenant"] = TENANT
            response = case.call(base_url=base_url)
            statuses.append(response.status_code)
            try:
                case.validate_response(response, checks=(not_a_server_error,))
            except Exception as exc:  # collect: one failure must not hide the others
                failures.append(f"{op.method.upper()} {op.path}: {exc}")  # noqa: B023 - run() runs in this iteration

        run()
    assert not failures, "\n".join(failures[:5])
    assert len(statuses) >= 100 and any(s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses)
    assert max(statuses) < 500


def test_the_operator_issues_and_revokes_tenant_tokens_over_http(api):
    http, operator, own = api["http"], auth(api["operator"]), auth(api["tokens"][TENANT])
    issued = http.post(f"/api/v1/tenants/{TENANT}/tokens", json={"name": "ci"}, headers=operator).json()
    token = issued["token"]
    assert token.startswith(f"byt_{TENANT}_")
    assert http.get(f"/api/v1/tenants/{TENANT}/bots", headers=auth(token)).status_code == 200
    # A tenant's own token may not mint or revoke tokens.
    for path, body in (("tokens", {}), ("tokens/revoke", {"token": token})):
        r = http.post(f"/api/v1/tenants/{TENANT}/{path}", json=body, headers=own)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    assert http.post("/api/v1/tenants/other-co/tokens/revoke", json={"token": token}, headers=operator).status_code == 404
    assert http.post(f"/api/v1/tenants/{TENANT}/tokens/revoke", json={"token": token}, headers=operator).json()["revoked"]
    r = http.get(f"/api/v1/tenants/{TENANT}/bots", headers=auth(token))
    assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized")
    r = http.post(f"/api/v1/tenants/{TENANT}/tokens/revoke", json={"token": token}, headers=operator)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_token")
