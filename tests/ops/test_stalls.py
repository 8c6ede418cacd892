"""A hung node: SIGSTOP past the node timeout, then SIGCONT, under clients that retry with
the same turn_id. It keeps its NATS connection, so the queue group keeps handing it about
half the requests; when it resumes it must record none of that backlog again (the fence,
and ``botyard_turn_ids`` for turns however old). Real processes, real PostgreSQL.

``BOTYARD_STALL_RUNS=5`` runs it five times (one fresh database each)."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
import uuid

import pytest

from botyard import Client, TurnError
from botyard.events.conversation import RECENT_TURNS
from botyard.events.store import EventStore
from tests.conftest import promote
from tests.ops.test_cluster import wait_for_members
from tests.ops.test_process import start_node, stop

TENANT, BOT = "acme-shop", "support"
NODE_TIMEOUT = 2.0
FAST = {"BOTYARD_HEARTBEAT_SECONDS": "0.25", "BOTYARD_NODE_TIMEOUT": str(NODE_TIMEOUT)}
CLIENT_TIMEOUT = 0.3
"""A client gives up on an attempt after this long and retries with the same turn_id."""
RUNS = int(os.environ.get("BOTYARD_STALL_RUNS", "1"))


@pytest.mark.slow
@pytest.mark.parametrize("run", range(RUNS))
def test_a_node_stopped_past_its_timeout_records_no_turn_twice(run, tmp_path, nats_url, snapshot_dir, own_postgres_url):
    data = tmp_path / "data"
    promote(own_postgres_url, data, snapshot_dir)
    env = {
        "BOTYARD_NATS_URL": nats_url, "BOTYARD_DATA_DIR": str(data), "BOTYARD_SNAPSHOT_DIR": str(snapshot_dir),
        "BOTYARD_EVENTS_URL": own_postgres_url, "BOTYARD_HTTP_PORT": "-1", **FAST,
    }
    procs, files, logs = {}, {}, {}
    cids = [f"stall-{uuid.uuid4().hex[:6]}-{i}" for i in range(3)]
    acked: dict[str, list[tuple[int, str, str]]] = {c: [] for c in cids}  # (turn, turn_id, node)
    failures: collections.Counter = collections.Counter()
    marks: dict[str, dict[str, int]] = {}
    try:
        for name in ("n1", "n2"):
            files[name], logs[name] = tmp_path / f"{name}.beat", tmp_path / f"{name}.log"
            procs[name] = start_node({**env, "BOTYARD_NODE_ID": name, "BOTYARD_HEARTBEAT_FILE": str(files[name])}, logs[name])
        wait_for_members(files.values(), 2)

        async def drive() -> str:
            stopping = asyncio.Event()
            async with await Client.connect(nats_url, timeout=CLIENT_TIMEOUT) as client:

                async def talk(cid: str) -> None:
                    k = 0
                    while not stopping.is_set():
                        turn_id, give_up = f"{cid}-{k}", time.monotonic() + 60
                        while True:
                            try:
                                r = await client.say(TENANT, BOT, cid, f"where is my order {k}", turn_id=turn_id)
                                break
                            except TurnError as exc:
                                failures[exc.code] += 1
                                assert time.monotonic() < give_up, f"turn {turn_id} never succeeded"
                                await asyncio.sleep(0.02)
                        acked[cid].append((r.turn, turn_id, r.node))
                        k += 1

                def counts() -> dict[str, int]:
                    return {c: len(a) for c, a in acked.items()}

                tasks = [asyncio.create_task(talk(c)) for c in cids]
                await asyncio.sleep(2.0)
                owner = collections.Counter(node for a in acked.values() for _, _, node in a).most_common(1)[0][0]
                marks["stop"], stopped_at = counts(), time.monotonic()
                procs[owner].send_signal(signal.SIGSTOP)  # hung: connected, deaf, its requests piling up
                while True:  # past the timeout, and every conversation well past the 16-turn window
                    await asyncio.sleep(0.1)
                    paused = time.monotonic() - stopped_at
                    moved = min(counts()[c] - marks["stop"][c] for c in cids)
                    if paused >= NODE_TIMEOUT + 3 and moved >= RECENT_TURNS + 4 or paused >= 30:
                        break
                marks["cont"] = counts()
                procs[owner].send_signal(signal.SIGCONT)
                await asyncio.sleep(6.0)  # it refuses its backlog, hears itself again, takes turns again
                marks["end"] = counts()
                stopping.set()
                await asyncio.gather(*tasks)
                return owner

        owner = asyncio.run(drive())
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
            stop(proc)

    store = EventStore(own_postgres_url, data)
    try:
        for cid in cids:
            recorded = store.turns(TENANT, BOT, cid)
            ids = [e.turn_id for e in recorded]
            twice = [t for t, n in collections.Counter(ids).items() if n > 1]
            assert not twice, f"{cid}: turn ids recorded twice: {twice}"
            assert [e.turn for e in recorded] == list(range(1, len(recorded) + 1))
            by_id = {e.turn_id: e.turn for e in recorded}
            for turn, turn_id, _ in acked[cid]:
                assert by_id.get(turn_id) == turn, f"acknowledged turn {turn_id} (#{turn}) not recorded as such"
    finally:
        store.close()
    during = {c: marks["cont"][c] - marks["stop"][c] for c in cids}
    assert min(during.values()) > RECENT_TURNS, during  # the conversations went on past the window meanwhile
    text = logs[owner].read_text()
    assert "out of the membership" in text and "hears itself again" in text
    after = {node for c in cids for _, _, node in acked[c][marks["end"][c] - 3 :]}
    assert owner in after, (owner, after, dict(failures))  # back in service, its conversations back
