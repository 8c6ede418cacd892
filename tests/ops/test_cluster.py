"""Several node processes, no coordinator: SIGKILL one under load, a node joins, a NATS
server of a 3-server cluster stops. Real nats-servers, real PostgreSQL, real processes."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from botyard import Client, TurnError
from botyard.events.store import EventStore
from botyard.ops.nats_server import EmbeddedNats, free_port
from tests.conftest import promote
from tests.ops.test_process import start_node, stop

TENANT, BOT = "acme-shop", "support"
FAST = {"BOTYARD_HEARTBEAT_SECONDS": "0.3", "BOTYARD_NODE_TIMEOUT": "1.2"}


def wait_for_members(files, count, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if all(len(json.loads(f.read_text())["members"]) == count for f in files):
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"nodes did not all see {count} members")


class Load:
    """Closed-loop clients, one conversation each; a failed turn is retried with its turn_id."""

    def __init__(self, url, clients=9):
        self.url = url
        self.cids = [f"cl-{uuid.uuid4().hex[:6]}-{i}" for i in range(clients)]
        self.acked = {c: [] for c in self.cids}  # (turn, turn_id, node)
        self.failed_attempts = []
        self.stop = False

    async def run(self, phases):
        """``phases``: [(seconds, callable or None)], the callable runs (in a thread) at the phase's start."""
        async with await Client.connect(self.url, timeout=2.0) as client:

            async def talk(cid):
                k = 0
                while not self.stop:
                    turn_id = f"{cid}-{k}"
                    for _ in range(20):
                        try:
                            r = await client.say(TENANT, BOT, cid, f"where is my order {k}", turn_id=turn_id)
                            break
                        except TurnError as exc:
                            self.failed_attempts.append((cid, turn_id, exc.code))
                            await asyncio.sleep(0.2)
                    else:
                        raise AssertionError(f"turn {turn_id} never succeeded")
                    self.acked[cid].append((r.turn, turn_id, r.node))
                    k += 1

            tasks = [asyncio.create_task(talk(c)) for c in self.cids]
            for seconds, action in phases:
                if action is not None:
                    await asyncio.to_thread(action)
                await asyncio.sleep(seconds)
            self.stop = True
            await asyncio.gather(*tasks)

    def check_store(self, events_url, data_dir):
        """Every acknowledged turn recorded once, with the number it was acknowledged with."""
        store = EventStore(events_url, data_dir)
        try:
            for cid in self.cids:
                recorded = store.turns(TENANT, BOT, cid)
                assert [e.turn for e in recorded] == list(range(1, len(recorded) + 1))
                ids = [e.turn_id for e in recorded]
                assert len(ids) == len(set(ids)), f"a turn of {cid} was recorded twice"
                by_id = {e.turn_id: e.turn for e in recorded}
                for turn, turn_id, _ in self.acked[cid]:
                    assert by_id.get(turn_id) == turn
        finally:
            store.close()

    def nodes_after(self, index):
        return {node for acks in self.acked.values() for _, _, node in acks[index:]}


@pytest.fixture
def cluster_env(tmp_path, nats_url, snapshot_dir, own_postgres_url):
    postgres_url = own_postgres_url
    data = tmp_path / "data"
    promote(postgres_url, data, snapshot_dir)
    return {
        "BOTYARD_NATS_URL": nats_url, "BOTYARD_DATA_DIR": str(data), "BOTYARD_SNAPSHOT_DIR": str(snapshot_dir),
        "BOTYARD_EVENTS_URL": postgres_url, **FAST,
    }


def test_sigkill_one_of_three_then_a_node_joins(cluster_env, nats_url, tmp_path):
    procs, files = {}, {}

    def start(name):
        files[name] = tmp_path / f"{name}.beat"
        env = {**cluster_env, "BOTYARD_NODE_ID": name, "BOTYARD_HEARTBEAT_FILE": str(files[name])}
        procs[name] = start_node(env, tmp_path / f"{name}.log")

    try:
        for name in ("n1", "n2", "n3"):
            start(name)
        wait_for_members(files.values(), 3)
        load = Load(nats_url)
        marks = {}

        def kill():
            marks["kill"] = {c: len(a) for c, a in load.acked.items()}
            procs["n2"].send_signal(signal.SIGKILL)  # no goodbye: its in-flight turns are gone

        def join():
            marks["join"] = {c: len(a) for c, a in load.acked.items()}
            start("n4")

        asyncio.run(load.run([(1.5, None), (3.0, kill), (4.0, join)]))
        survivors = [files[n] for n in ("n1", "n3", "n4")]
        wait_for_members(survivors, 3)
        shown = subprocess.run([sys.executable, "-m", "botyard", "cluster", "--json"], env={**os.environ, **cluster_env},
                               capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        view = json.loads(shown.stdout)
        assert [n["node"] for n in view["nodes"]] == ["n1", "n3", "n4"]
        assert len(view["placement"][f"{TENANT}/{BOT}"]) == 2 and sum(n["bots"] for n in view["nodes"]) == 2
    finally:
        for proc in procs.values():
            stop(proc)
    total = sum(map(len, load.acked.values()))
    assert total > 100
    load.check_store(cluster_env["BOTYARD_EVENTS_URL"], cluster_env["BOTYARD_DATA_DIR"])
    # failures only for turns in flight at the kill (at most one per client), each retried to success
    assert len(load.failed_attempts) <= 2 * len(load.cids), load.failed_attempts
    answered_before = {n for c, acks in load.acked.items() for _, _, n in acks[: marks["kill"][c]]}
    # n2 (the node killed) answered before the kill; whether the third node did too depends on
    # how soon the bot turned hot and spread over all three (seen: {n1, n2} in 1 of ~15 runs)
    assert "n2" in answered_before and len(answered_before) >= 2, answered_before
    after_kill = {n for c, acks in load.acked.items() for _, _, n in acks[marks["kill"][c] + 2 : marks["join"][c]]}
    assert "n2" not in after_kill and after_kill <= {"n1", "n3"}
    after_join = {n for c, acks in load.acked.items() for _, _, n in acks[marks["join"][c] + 1 :]}
    assert "n4" in after_join  # the new node took its share of conversations


def test_a_nats_server_of_three_stops_under_load(tmp_path, snapshot_dir, postgres_url):
    ports, servers, procs = {}, [], []
    try:
        # Every port chosen first (client ports too: a server's `-p -1` could otherwise draw a
        # route port chosen here for another server before that one binds it).
        chosen = set()
        while len(chosen) < 6:
            chosen.add(free_port())
        client_ports, cluster_ports = sorted(chosen)[:3], sorted(chosen)[3:]
        for i in range(3):
            servers.append(EmbeddedNats(tmp_path / f"nats{i}", jetstream=False, port=client_ports[i]))
        routes = ",".join(f"nats://127.0.0.1:{p}" for p in cluster_ports)
        for i, server in enumerate(servers):
            server.extra_args = ("--cluster_name", "botyard", "--cluster", f"nats://127.0.0.1:{cluster_ports[i]}",
                                 "--routes", routes)
            ports[i] = server.start()
        data = tmp_path / "data"
        promote(postgres_url, data, snapshot_dir)
        files = []
        for i in range(3):
            files.append(tmp_path / f"n{i}.beat")
            env = {"BOTYARD_NATS_URL": ports[i], "BOTYARD_DATA_DIR": str(data), "BOTYARD_SNAPSHOT_DIR": str(snapshot_dir),
                   "BOTYARD_EVENTS_URL": postgres_url, "BOTYARD_NODE_ID": f"n{i}", "BOTYARD_HEARTBEAT_FILE": str(files[-1]),
                   **FAST}
            procs.append(start_node(env, tmp_path / f"n{i}.log"))
        wait_for_members(files, 3)
        load = Load(ports[0])  # the clients stay on server 0; server 2 goes away
        asyncio.run(load.run([(1.5, None), (4.0, servers[2].stop)]))
        n2_log = (tmp_path / "n2.log").read_text()
        assert "reconnected to NATS" in n2_log
        wait_for_members(files, 3)  # n2 is back in everyone's view, through another server
    finally:
        for proc in procs:
            stop(proc)
        for server in servers:
            server.stop()
    load.check_store(postgres_url, data)
    assert sum(map(len, load.acked.values())) > 100
    assert len(load.failed_attempts) <= 2 * len(load.cids), load.failed_attempts
