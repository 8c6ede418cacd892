"""What a running node reports about itself: one typed object, set by the node as its
parts start, read by the heartbeat, the metrics collector and inspection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pykka

from botyard.actors.bridge import NatsBridge
from botyard.actors.router import TurnRouter
from botyard.ops.turn_stream import TurnStream


@dataclass(slots=True)
class NodeStatus:
    node_id: str
    capacity: int
    started_at: float
    nats_url: str = ""
    router: TurnRouter | None = None
    """Turns received and forwarded, the membership view, the actors' routing."""
    bridge: NatsBridge | None = None
    """Turns in flight, reconnects."""
    supervisor: pykka.ActorRef | None = None
    """Actor restarts."""
    http_url: str | None = None
    turn_stream: TurnStream | None = None
    """The relay into the turn stream: events published, and its lag behind the event store."""
    last_beat: dict[str, Any] | None = None
    """The newest heartbeat this node published (written by the heartbeat)."""

    @property
    def turns_received(self) -> int:
        return self.router.turns_received if self.router else 0

    @property
    def turns_forwarded(self) -> int:
        return self.router.turns_forwarded if self.router else 0

    @property
    def in_flight(self) -> int:
        return self.bridge.in_flight if self.bridge else 0

    @property
    def reconnects(self) -> int:
        return self.bridge.reconnects if self.bridge else 0

    @property
    def members(self) -> list[str]:
        """The nodes this node hears, itself included (read across threads: a copy of the keys)."""
        return sorted(self.router.membership.members) if self.router else []

    def workers(self) -> list[pykka.ActorRef]:
        routing = self.router.routing if self.router else None
        return list(routing.workers) if routing else []

    def restarts(self) -> int:
        sup = self.supervisor
        try:
            return sup.proxy().stats().get(timeout=2)["restarts"] if sup is not None and sup.is_alive() else 0
        except (pykka.ActorDeadError, pykka.Timeout):
            return 0
