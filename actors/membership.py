"""The membership view: which nodes are alive, from their heartbeats, and where things go.

Each node publishes a heartbeat on ``botyard.cluster.heartbeat`` about once a second:
``{node, capacity, load, resident, resident_bytes, hot, draining, at}``. Every node
keeps this view of all of them; a node not heard from for ``timeout`` seconds, or one
that said it is leaving (``draining``), is out of the placement. The view is owned by
the NATS bridge's loop thread (heartbeats arrive there and turns are routed there), so
it needs no lock; other threads read copies (:meth:`snapshot`).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from botyard.actors import placement

MAX_CAPACITY = 100.0
"""The largest capacity a node may have (``BOTYARD_CAPACITY``): a heartbeat claiming more is
ignored, so one forged beat cannot draw every bot to a node."""
_NODE_RE = re.compile(r"[^\s\x00*>]{1,128}\Z")


@dataclass
class Member:
    node: str
    capacity: float
    last_seen: float
    info: dict[str, Any] = field(default_factory=dict)


class Membership:
    def __init__(
        self,
        self_id: str,
        *,
        capacity: float = 1.0,
        timeout: float = 3.0,
        copies: int = 2,
        hot_rate: float = 50.0,
        spread: str = "hot",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.self_id = self_id
        self.spread = spread
        """``hot``: a bot's conversations all go to its first copy (the others stand by, and
        take over at once if it leaves) unless the bot is hot; ``all``: every bot's
        conversations spread over its copies."""
        self.timeout = timeout
        self.copies = copies
        self.hot_rate = hot_rate
        self.clock = clock
        self.members: dict[str, Member] = {self_id: Member(self_id, capacity, clock())}
        self.version = 0
        """Bumped whenever the set of live nodes or a bot's copy count changes."""
        self._live: dict[str, float] = {self_id: capacity}
        self._copies_cache: dict[str, list[str]] = {}
        self._hot: dict[str, int] = {}

    # -- heartbeats -----------------------------------------------------------------------------

    def heard(self, beat: dict[str, Any]) -> bool:
        """Take one heartbeat; True when the placement changed. A beat that is not one a node
        sends (no node name, a capacity that is not a number in (0, MAX_CAPACITY]) raises
        ``ValueError`` and changes nothing: the caller logs and ignores it."""
        node = beat["node"]
        if not isinstance(node, str) or not _NODE_RE.match(node):
            raise ValueError(f"heartbeat with a node name that is no name: {str(node)[:64]!r}")
        capacity = beat.get("capacity", 1.0)
        if isinstance(capacity, bool) or not isinstance(capacity, (int, float)) or not 0 < capacity <= MAX_CAPACITY:
            raise ValueError(f"heartbeat of {node} with capacity {capacity!r}: must be a number in (0, {MAX_CAPACITY}]")
        if beat.get("draining"):
            if node == self.self_id:
                return False  # we keep routing to ourselves until we are gone
            gone = self.members.pop(node, None) is not None
            return self._recompute() if gone else False
        member = self.members.get(node)
        capacity = float(capacity)
        if member is None:
            self.members[node] = Member(node, capacity, self.clock(), beat)
        else:
            member.last_seen, member.info, member.capacity = self.clock(), beat, capacity
        return self._recompute()

    def self_silent_for(self) -> float:
        """Seconds since this node last heard its own heartbeat (or :meth:`touch_self`).

        Past ``timeout`` the other nodes have dropped it from their views, so it is out of
        the membership whatever its own view says: paused (SIGSTOP, a long stall) or cut
        off from NATS. The router stops taking turns then (the fence)."""
        return self.clock() - self.members[self.self_id].last_seen

    def touch_self(self) -> None:
        """Count as heard from just now (when starting to serve, before its first heartbeat)."""
        self.members[self.self_id].last_seen = self.clock()

    def expire(self) -> bool:
        """Drop nodes not heard from within the timeout; True when the placement changed."""
        cutoff = self.clock() - self.timeout
        dead = [n for n, m in self.members.items() if m.last_seen < cutoff and n != self.self_id]
        for n in dead:
            del self.members[n]
        return self._recompute() if dead else False

    def _recompute(self) -> bool:
        live = {n: m.capacity for n, m in self.members.items() if m.capacity > 0}
        hot: dict[str, float] = {}
        for m in self.members.values():
            for bot, rate in (m.info.get("hot") or {}).items():
                hot[bot] = hot.get(bot, 0.0) + float(rate)
        extra = {}
        for bot, rate in hot.items():
            wanted = int(min(len(live), self.copies + math.floor(rate / self.hot_rate)))
            if wanted > min(len(live), self.copies):  # only a real change of copies moves anything
                extra[bot] = wanted
        if live == self._live and extra == self._hot:
            return False
        self._live, self._hot = live, extra
        self._copies_cache.clear()
        self.version += 1
        return True

    # -- placement ------------------------------------------------------------------------------

    def copies_of(self, bot_key: str) -> list[str]:
        found = self._copies_cache.get(bot_key)
        if found is None:
            found = placement.copies_for(bot_key, self._live, self._hot.get(bot_key, self.copies))
            self._copies_cache[bot_key] = found
        return found

    def owner_of(self, bot_key: str, conversation_key: str) -> str:
        copies = self.copies_of(bot_key)
        if self.spread == "hot" and bot_key not in self._hot:
            return copies[0]  # one node holds the model: each node's cache holds its share of the bots
        return placement.owner(conversation_key, copies, self._live)

    def frozen(self) -> "Membership":
        """A copy of the current placement for another thread to read (say, an actor deciding
        which of its conversations this node still owns); it never changes afterwards."""
        view = Membership(self.self_id, copies=self.copies, hot_rate=self.hot_rate, spread=self.spread)
        view._live, view._hot, view.version = dict(self._live), dict(self._hot), self.version
        return view

    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "self": self.self_id,
            "version": self.version,
            "nodes": {
                n: {"capacity": m.capacity, "seen_ago": round(now - m.last_seen, 3), **m.info}
                for n, m in sorted(self.members.items())
            },
            "hot": dict(self._hot),
        }
