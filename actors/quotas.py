"""Per-tenant quotas: turns per second (checked where a turn arrives, on the NATS loop),
bots, snapshot bytes and conversations in memory (checked where those grow).

A tenant over its turn rate gets ``rate_limited`` with ``retry_after`` (seconds) at once,
before any actor sees the turn: a noisy tenant costs the node the parsing of its excess
turns and an error reply each, never a place in the actors' queues.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from botyard.protocol import QUOTA_EXCEEDED, RATE_LIMITED

__all__ = ["QUOTA_EXCEEDED", "RATE_LIMITED", "Quota", "Quotas", "TurnRates"]


@dataclass(frozen=True, slots=True)
class Quota:
    """One tenant's limits; 0 is no limit."""

    turns_per_second: float = 0.0
    bots: int = 0
    snapshot_bytes: int = 0
    conversations: int = 0


@dataclass(frozen=True)
class Quotas:
    default: Quota = Quota()
    tenants: Mapping[str, Quota] = field(default_factory=dict)

    def of(self, tenant: str) -> Quota:
        return self.tenants.get(tenant, self.default)

    @property
    def any_conversation_limit(self) -> bool:
        return bool(self.default.conversations or any(q.conversations for q in self.tenants.values()))

    @classmethod
    def parse(cls, default: Quota, overrides: str | Mapping[str, Any]) -> "Quotas":
        """``overrides``: ``{"<tenant>": {"turns_per_second": 50, ...}}`` (JSON text or a mapping);
        ``ValueError`` names what is wrong."""
        data = json.loads(overrides) if isinstance(overrides, str) and overrides.strip() else (overrides or {})
        if not isinstance(data, Mapping):
            raise ValueError("must be a JSON object of tenant -> {turns_per_second, bots, snapshot_bytes, conversations}")
        known = {f.name for f in fields(Quota)}
        tenants = {}
        for tenant, limits in data.items():
            if not isinstance(limits, Mapping) or set(limits) - known:
                raise ValueError(f"tenant {tenant!r}: must be an object with some of {sorted(known)}")
            for k, v in limits.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                    raise ValueError(f"tenant {tenant!r}: {k} must be a number >= 0, got {v!r}")
            tenants[str(tenant)] = replace(default, **limits)
        return cls(default, tenants)


class TurnRates:
    """A token bucket per tenant (rate: its ``turns_per_second``; burst: a second's worth, at
    least 1). Used on one thread (the NATS loop's)."""

    def __init__(self, quotas: Quotas) -> None:
        self.quotas = quotas
        self._buckets: dict[str, tuple[float, float]] = {}
        """tenant -> (tokens, at)."""
        self.refused = 0

    def take(self, tenant: str, now: float) -> float:
        """0 when the turn may go on; else the seconds until it could (the turn is refused)."""
        rate = self.quotas.of(tenant).turns_per_second
        if not rate:
            return 0.0
        burst = max(1.0, rate)
        tokens, at = self._buckets.get(tenant, (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens >= 1.0:
            self._buckets[tenant] = (tokens - 1.0, now)
            return 0.0
        self._buckets[tenant] = (tokens, now)
        self.refused += 1
        return (1.0 - tokens) / rate
