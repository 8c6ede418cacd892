"""Shared fixtures: a real nats-server per module, a real trained snapshot per session,
real SQLite and PostgreSQL event stores. Nothing of botyard's own is mocked."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import yaml

from botyard.events.store import EventStore
from botyard.models.definition import load_bot
from botyard.ops.admin import Admin
from botyard.ops.config import Config
from botyard.ops.nats_server import EmbeddedNats
from botyard.ops.node import Node
from botyard.snapshots.store import LocalSnapshotStore

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_BOT = ROOT / "examples" / "shop-support.yml"
OLD_EXAMPLE_BOT = ROOT / "tests" / "data" / "shop-support-v1f88b70.yml"
"""The example bot before it had a dialogue section (as at commit 1f88b70): an old bot file."""
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def promote(events_url, data_dir, snapshot_dir, *, tenant="acme-shop", bot="support", snapshot=None, alias="production"):
    """Point a bot's alias at a snapshot (default: its newest) in an event store, as an operator would.

    An alias that already names a snapshot is left alone unless ``snapshot`` is given.
    """
    events = EventStore(events_url, data_dir)
    store = LocalSnapshotStore(snapshot_dir)
    try:
        sid = snapshot or store.latest(tenant, bot).id
        current = events.bot(tenant, bot)
        if current is not None and alias in current.aliases and snapshot is None:
            return current.aliases[alias]
        if current is None or current.aliases.get(alias) != sid:
            Admin(events, store).promote(tenant, bot, sid, alias=alias, actor="tests")
        return sid
    finally:
        events.close()


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory):
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"))
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="module")
def shop_actions(nats_url):
    """The example bot's action service (examples/shop_actions.py), in its own process on the
    module's nats-server, serving once it has printed its first line."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, str(ROOT / "examples" / "shop_actions.py"), "--nats", nats_url],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None and proc.stdout.readline().startswith("serving")
    yield proc
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def example_bot():
    return load_bot(EXAMPLE_BOT)


@pytest.fixture(scope="session")
def old_example_bot():
    return load_bot(OLD_EXAMPLE_BOT)


@pytest.fixture(scope="session")
def snapshot_dir(tmp_path_factory, example_bot):
    """The example bot, really trained (few epochs), in a session-wide snapshot store."""
    from botyard.training.config import TrainConfig
    from botyard.training.pipeline import train_to_store

    root = tmp_path_factory.mktemp("snapshots")
    info, _ = train_to_store(example_bot, LocalSnapshotStore(root), TrainConfig())
    return root


@pytest.fixture(scope="session")
def snapshots(tmp_path_factory, snapshot_dir):
    """A store with two trained snapshots of the example bot: {'good': id, 'bad': id, 'dir': path}."""
    from botyard.training.config import TrainConfig
    from botyard.training.pipeline import train_to_store

    root = tmp_path_factory.mktemp("two-snapshots")
    source = LocalSnapshotStore(snapshot_dir)
    good = source.load(source.latest("acme-shop", "support").id)
    store = LocalSnapshotStore(root)
    assert store.save(good.manifest, good.arrays).id == good.id  # same content, same id

    raw = yaml.safe_load(EXAMPLE_BOT.read_text())
    names = list(raw["intents"])
    examples = [raw["intents"][n]["examples"] for n in names]
    for i, name in enumerate(names):  # rotate: every intent learns the next one's examples
        raw["intents"][name]["examples"] = examples[(i + 1) % len(names)]
    bad_file = root / "rotated.yml"
    bad_file.write_text(yaml.safe_dump(raw))
    bad, _ = train_to_store(load_bot(bad_file), store, TrainConfig(epochs=10), parent=good.id)
    return {"good": good.id, "bad": bad.id, "dir": root}


def _fresh_postgres():
    """Create a new PostgreSQL database; yield its URL; drop it. Fails (never skips) under CI."""
    import psycopg

    name = f"botyard_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required under CI and unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL database shared by the session's tests."""
    yield from _fresh_postgres()


@pytest.fixture
def own_postgres_url():
    """A PostgreSQL database of this test alone (for tests that count what the store holds)."""
    yield from _fresh_postgres()


@pytest.fixture(params=["sqlite", "postgres"])
def events_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def make_node(tmp_path, nats_url, snapshot_dir):
    """Start nodes on the module's nats-server; every one is stopped at teardown."""
    nodes: list[Node] = []

    def make(**overrides) -> Node:
        settings = {
            "nats_url": nats_url,
            "data_dir": str(tmp_path / "data"),
            "snapshot_dir": str(snapshot_dir),
            "gc_freeze_seconds": 0,  # in-process nodes leave the test process's collector alone
            # turns of a conversation the example bot handed to a person are answered at once, not
            # held for an agent (tests of handoff set the wait they test)
            "handoff_wait_seconds": 0,
            **overrides,
        }
        config = Config.from_mapping({}, **settings)
        if config.snapshot_store == "local" and LocalSnapshotStore(config.snapshots_path).latest("acme-shop", "support"):
            promote(config.events_url, config.data_dir, config.snapshots_path)
        node = Node(config).start()
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.stop()


SLOW = (
    "tests/ops/test_process.py::",  # the CLI and nodes in subprocesses
    "tests/ops/test_cluster.py::",  # three nodes, kills and joins
    "tests/training/test_distributed.py::",  # Horovod workers
    "tests/ops/test_browser.py::",  # Chromium
    "tests/models/test_tuned.py::",  # fine-tunes MiniLM's layers
    "-tuned", "-context", "-cascade", "[tuned]", "[context]",  # models that read the sentence encoder
    "::test_a_definition_saved_over_http_trains_as_a_job_and_serves",
    "::test_fuzzing_the_api_from_its_openapi_document_finds_no_5xx",
    "::test_a_context_snapshot_refers_to_its_encoder_by_hash",
    "::test_a_cascade_answers_with_its_second_model_below_the_gate",
    "::test_sigkill_in_the_middle_of_a_form_then_a_new_node_goes_on",
    "::test_botyard_test_exits_0_when_all_pass_1_when_any_fails_and_2_on_errors",  # seven CLI runs
)
"""Tests marked ``slow`` (``-m "not slow"`` leaves them out while you work): by node id."""


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(part in item.nodeid for part in SLOW):
            item.add_marker(pytest.mark.slow)
