"""Fixtures of the HTTP API tests: a node with its API, real turns, and two tenants' tokens."""

import asyncio
import shutil

import httpx
import pytest

from botyard import Client
from botyard.events.store import EventStore
from botyard.events.tenant import digest, new_token
from tests.conftest import promote

TENANT, BOT = "acme-shop", "support"


def auth(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(make_node, nats_url, snapshots, tmp_path):
    """A node on the good snapshot with its HTTP API, a conversation, and tokens of two tenants."""
    yield from _api(make_node, nats_url, snapshots, tmp_path, snapshots["dir"])


@pytest.fixture
def api_own_store(make_node, nats_url, snapshots, tmp_path):
    """The same, on a private copy of the session's snapshot store (for tests that train into it)."""
    private = tmp_path / "snapshots"
    shutil.copytree(snapshots["dir"], private)
    yield from _api(make_node, nats_url, snapshots, tmp_path, private)


def _api(make_node, nats_url, snapshots, tmp_path, snapshot_dir):
    data = tmp_path / "data"
    promote("", data, snapshot_dir, snapshot=snapshots["good"])
    node = make_node(data_dir=str(data), snapshot_dir=str(snapshot_dir))

    async def talk():
        async with await Client.connect(nats_url) as client:
            for text in ["hello", "where is my order?", "bye"]:
                await client.say(TENANT, BOT, "web-1", text)

    asyncio.run(talk())
    events = EventStore(node.config.events_url, node.config.data_dir)
    tokens = {}
    try:
        for tenant in (TENANT, "other-co"):
            tokens[tenant] = new_token(tenant)
            events.change_tenant(tenant, lambda t, tok=tokens[tenant]: t.issue(digest(tok), "tests", "tests"))
    finally:
        events.close()
    operator = (data / "operator.token").read_text().strip()
    with httpx.Client(base_url=node.http.url, timeout=30) as http:
        yield {"node": node, "http": http, "tokens": tokens, "operator": operator, "snapshots": snapshots}


