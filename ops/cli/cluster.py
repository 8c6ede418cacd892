"""``botyard cluster``: the nodes as their heartbeats describe them, and where the bots go.

It listens to ``botyard.cluster.heartbeat`` for a little longer than one heartbeat
interval and computes the same placement every node computes, from the same heartbeats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from typing import Any

from botyard import protocol
from botyard.actors.membership import Membership
from botyard.errors import BotyardError
from botyard.ops import stores
from botyard.ops.bus_auth import connect_options
from botyard.ops.config import Config


async def listen(url: str, seconds: float, *, options: dict | None = None) -> list[dict[str, Any]]:
    import nats

    beats: dict[str, dict[str, Any]] = {}
    nc = await nats.connect(url.split(","), connect_timeout=3, max_reconnect_attempts=0, allow_reconnect=False, **(options or {}))
    try:
        async def take(msg) -> None:
            beat = protocol.decode_body(msg.data, False)
            if isinstance(beat, dict) and "node" in beat:
                beats[str(beat["node"])] = beat

        await nc.subscribe(protocol.HEARTBEAT_SUBJECT, cb=take)
        await asyncio.sleep(seconds)
    finally:
        await nc.close()
    return [b for b in beats.values() if not b.get("draining")]


def cluster_view(beats: list[dict[str, Any]], bots: list[str], copies: int, hot_rate: float) -> dict[str, Any]:
    if not beats:
        raise BotyardError("no node heartbeats heard: is a node running on this NATS?")
    view = Membership(str(beats[0]["node"]), capacity=float(beats[0].get("capacity", 1.0)), copies=copies, hot_rate=hot_rate)
    for beat in beats:
        view.heard(beat)
    placed = {bot: view.copies_of(bot) for bot in bots}
    share = Counter(n for nodes in placed.values() for n in nodes)
    return {
        "nodes": [
            {**{k: b.get(k) for k in ("node", "capacity", "load", "in_flight", "resident", "resident_bytes", "hot")},
             "bots": share.get(str(b["node"]), 0), "up_seconds": round(time.time() - b.get("started_at", time.time()))}
            for b in sorted(beats, key=lambda b: str(b["node"]))
        ],
        "placement": placed,
    }


def cmd_cluster(args: argparse.Namespace, config: Config) -> int:
    from botyard.ops.cli.common import known_nats_url

    url = known_nats_url(config)
    if not url:
        raise BotyardError("no NATS URL: set BOTYARD_NATS_URL, or run it beside a node's data dir")
    beats = asyncio.run(listen(url, config.heartbeat_seconds * 1.5 + 0.2, options=connect_options(config, role="node")))
    events = stores.open_events(config)
    try:
        bots = sorted({f"{t}/{b}" for t, b in events.bot_refs()})
    finally:
        events.close()
    view = cluster_view(beats, bots, config.copies, config.hot_rate)
    if args.json:
        print(json.dumps(view, indent=2))
        return 0
    print(f"{len(view['nodes'])} nodes, {len(bots)} bots, {config.copies} copies each")
    print(f"  {'node':<24}{'cap':>5}{'turns/s':>9}{'in flight':>10}{'bots':>7}{'models':>8}{'MB':>8}  hot")
    for n in view["nodes"]:
        print(f"  {n['node']:<24}{n['capacity']:>5g}{n['load']:>9.1f}{n['in_flight']:>10}{n['bots']:>7}"
              f"{n['resident']:>8}{(n['resident_bytes'] or 0) / 1e6:>8.1f}  {', '.join(n['hot'] or {})}")
    if args.placement:
        for bot, nodes in view["placement"].items():
            print(f"  {bot}: {', '.join(nodes)}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("cluster", help="nodes, load, placement and resident models, from the nodes' heartbeats")
    p.add_argument("--placement", action="store_true", help="list every bot with the nodes that serve it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cluster)
    return p
