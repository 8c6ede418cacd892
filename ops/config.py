"""Configuration: a frozen dataclass built from an injected mapping.

Every field ``x_y`` is read from ``BOTYARD_X_Y``; the process environment is only the
default mapping, and CLI flags of the same name override it. Pydantic converts and checks
the values (the bounds are in the field types); every problem is reported at once, each
naming its variable, as one :class:`~botyard.ops.errors.ConfigError`.
"""

from __future__ import annotations

import os
import socket
from dataclasses import field, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic.dataclasses import dataclass

from botyard.ops.errors import ConfigError

PREFIX = "BOTYARD_"
EMPTY_IS_A_VALUE = ("nats_url", "events_url")
"""Fields where an empty value is a value (the embedded server, SQLite); elsewhere it means unset."""

Positive = Annotated[int, Field(ge=1)]
Share = Annotated[float, Field(ge=0, le=1)]


def var(name: str) -> str:
    """The variable of field ``name``: ``BOTYARD_<NAME>``."""
    return PREFIX + name.upper()


@dataclass(frozen=True, config=ConfigDict(coerce_numbers_to_str=True))
class Config:
    nats_url: str = ""
    """NATS server URL(s), comma-separated. Empty: start an embedded nats-server."""
    data_dir: Path = Path(".botyard")
    """Where the embedded NATS store, the SQLite event store and snapshots live."""
    events_url: str = ""
    """Event store. Empty: SQLite in the data directory; ``postgresql://...``: PostgreSQL."""
    snapshot_dir: Path | None = None
    """Local snapshot store. Empty: ``<data_dir>/snapshots``."""
    snapshot_store: Literal["local", "nats"] = "local"
    """``local``: the snapshot directory; ``nats``: the NATS JetStream object store (nodes sharing no disk)."""
    snapshot_bucket: str = "botyard-snapshots"
    """Object-store bucket when ``snapshot_store`` is ``nats``."""
    node_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    """This node's name in events and logs."""
    max_text_bytes: Positive = 4096
    """Longest accepted user text, in UTF-8 bytes."""
    idle_seconds: Annotated[float, Field(gt=0)] = 300.0
    """A conversation idle this long is dropped from memory (rebuilt from events on its next turn)."""
    max_conversations: Positive = 10_000
    """Most conversations kept in memory per node; the least recently used go first."""
    conversation_shards: Positive = 1
    """Conversation actors (threads); each owns the conversations hashed to it. One actor
    group-committing everything measured fastest on SQLite and PostgreSQL alike
    (``bench/turns.py --shards``)."""
    intent_workers: Positive = 1
    """Intent-worker actors (threads) classifying utterances."""
    model_cache_bytes: Positive = 1 << 30
    """Memory for loaded models, all intent workers together; the least recently used go first."""
    capacity: Annotated[float, Field(gt=0, le=100)] = 1.0
    """This node's weight in placement: a node of capacity 2 gets about twice the bots."""
    copies: Positive = 2
    """Nodes that serve each bot (either answers); a hot bot gets more."""
    hot_rate: float = 50.0
    """Turns per second over the cluster above which a bot gets one more copy (per multiple)."""
    conversation_spread: Literal["hot", "all"] = "hot"
    """``hot``: the conversations of a bot below ``hot_rate`` all go to its first copy (its
    other copies stand by and take over when that node leaves), so each node's model cache
    holds only its share of the bots; a hot bot's spread over all its copies. ``all``:
    every bot's conversations spread over its copies (each copy loads the model)."""
    heartbeat_seconds: Annotated[float, Field(gt=0)] = 1.0
    """How often this node publishes its heartbeat."""
    node_timeout: Annotated[float, Field(validate_default=True)] = 3.0
    """A node not heard from for this long is out: others take over its bots and conversations."""
    heartbeat_file: str = ""
    """If set, a file rewritten with this node's status on every heartbeat (for liveness probes)."""
    conversation_snapshot_every: Annotated[int, Field(ge=0)] = 100
    """Take a conversation's aggregate snapshot every this many events (off the turn path),
    so activating a long conversation replays at most this many; 0: never."""
    handoff_wait_seconds: Annotated[float, Field(ge=0)] = 3.0
    """How long a user's turn in a handed-off conversation waits for an agent's answer (which
    then is its reply) before it is answered with no text; the agent's later answer comes
    with the user's next turn. Keep it under clients' request timeout (5 s in botyard's)."""
    gate_turns: Positive = 1000
    """The replay gate (``promote --gate``) replays the bot's last this many turns."""
    gate_max_changed: Share = 0.10
    """The gate refuses a candidate whose intent differs from the label on more than this
    share of the labelled turns replayed (from what was served, if none is labelled)."""
    gate_max_fallback_rise: Share = 0.05
    """The gate refuses a candidate whose fallback rate is higher by more than this."""
    metrics: int = 1
    """1: count every reply and time every turn and classification for ``/metrics``; 0: do
    not (the figures read from heartbeats stay). For measuring what metrics cost."""
    http_host: str = "127.0.0.1"
    """Where the node serves the admin HTTP API and ``/metrics``."""
    http_port: int = 0
    """Port of the admin HTTP API and ``/metrics``; 0: any free port (written to ``<data_dir>/http.url``
    and into heartbeats); -1: none."""
    operator_token: str = ""
    """The token that reaches every tenant in the HTTP API. Empty: the node makes one and
    writes it to ``<data_dir>/operator.token`` (mode 600)."""
    gc_freeze_seconds: float = 30.0
    """At start and then every this many seconds, move the objects that survived the young
    collections (imports, loaded models, resident conversations) out of the garbage
    collector's sight (``gc.freeze``), so a full collection does not scan them: with 850
    models resident one took 242 ms, every thread stopped (10,000-bot bench). Models and
    conversations hold no reference cycles, so they are still freed when evicted; a cycle
    frozen in is kept. 0: leave the collector alone."""
    turn_stream: bool = True
    """Publish every committed turn, proactive message and agent answer, after its commit, into
    the JetStream stream ``BOTYARD_TURNS`` on ``botyard.stream.<tenant>.<bot>`` (created if
    missing), relayed from the event store's log: each once, in commit order, through kills
    and restarts (docs/protocol.md, "Turn stream"). Off: no relay."""
    turn_stream_max_age_days: Annotated[float, Field(gt=0)] = 7.0
    """The turn stream keeps a message this many days (JetStream's ``max_age``; the stream
    is updated when it differs)."""
    turn_stream_poll_seconds: Annotated[float, Field(gt=0, le=10)] = 0.05
    """How often the turn stream's relay looks for newly committed events when it has caught up."""
    nats_auth: bool = True
    """The embedded nats-server requires credentials: nkey users with per-subject permissions
    (node, operator, one per tenant credential; docs/security.md). The node writes its users
    from the event log and reloads the server when a credential is issued or revoked. Off:
    anyone who reaches the server may do anything (a test bus)."""
    nats_seed_file: str = ""
    """An nkey seed file this process authenticates to NATS with (a server run elsewhere, in
    config or operator mode). Empty: none; or, with the embedded server and ``nats_auth``, the
    data directory's own keys (``nats/node.nk`` for a node, ``nats/operator.nk`` for the CLI)."""
    nats_inbox_prefix: str = ""
    """The inbox prefix of this process's NATS requests (a tenant's credential may read only
    ``_INBOX_<tenant>``). Empty: NATS's default, or the operator's with the data directory's key."""
    quota_turns_per_second: Annotated[float, Field(ge=0)] = 0.0
    """Each tenant's turns per second on this node (a token bucket; a burst of a second's
    worth): a turn over it is refused with ``rate_limited`` and ``retry_after`` seconds. 0: no limit."""
    quota_bots: Annotated[int, Field(ge=0)] = 0
    """Bots a tenant may have (training or defining one more is refused with ``quota_exceeded``). 0: no limit."""
    quota_snapshot_bytes: Annotated[int, Field(ge=0)] = 0
    """Bytes of snapshots a tenant may store (a snapshot over it is refused). 0: no limit."""
    quota_conversations: Annotated[int, Field(ge=0)] = 0
    """Conversations of one tenant kept in memory per node; its least recently used go first
    (they come back by replay). 0: only ``max_conversations`` applies."""
    tenant_quotas: str = ""
    """Per-tenant quotas over the ones above, as JSON: ``{"acme": {"turns_per_second": 50, "bots": 20}}``."""
    log_level: str = "INFO"
    """Python logging level. At INFO every committed turn is logged (``botyard.turns``)."""
    log_format: Literal["text", "json"] = "text"
    """``text``: one readable line per record; ``json``: one JSON object per line with the
    record's fields (``tenant``, ``bot``, ``conversation_id``, ``turn``, ``turn_id``, ...)."""

    @property
    def snapshots_path(self) -> Path:
        return self.snapshot_dir or self.data_dir / "snapshots"

    @field_validator("tenant_quotas")
    @classmethod
    def _quotas_json(cls, value: str) -> str:
        from botyard.actors.quotas import Quota, Quotas

        Quotas.parse(Quota(), value)  # ValueError: reported under BOTYARD_TENANT_QUOTAS
        return value

    @property
    def quotas(self):
        """The tenants' quotas (:class:`botyard.actors.quotas.Quotas`)."""
        from botyard.actors.quotas import Quota, Quotas

        default = Quota(self.quota_turns_per_second, self.quota_bots, self.quota_snapshot_bytes, self.quota_conversations)
        return Quotas.parse(default, self.tenant_quotas)

    @field_validator("node_timeout")
    @classmethod
    def _longer_than_a_heartbeat(cls, value: float, info: ValidationInfo) -> float:
        beat = info.data.get("heartbeat_seconds")
        if beat is not None and value <= beat:
            raise ValueError(f"must be longer than {var('heartbeat_seconds')} ({beat})")
        return value

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str] | None = None, **overrides: Any) -> "Config":
        """Build from ``BOTYARD_*`` keys of ``mapping`` (default: ``os.environ``), then ``overrides``."""
        mapping = os.environ if mapping is None else mapping
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = overrides.get(f.name)
            if raw is None:
                raw = mapping.get(var(f.name))
            if raw is None or raw == "" and f.name not in EMPTY_IS_A_VALUE:
                continue
            values[f.name] = raw
        try:
            return cls(**values)
        except ValidationError as exc:
            raise config_error(exc) from None

    @property
    def gate(self):
        """The replay gate's limits."""
        from botyard.ops.gate import GateLimits

        return GateLimits(self.gate_turns, self.gate_max_changed, self.gate_max_fallback_rise)

    def with_(self, **changes: Any) -> "Config":
        """A copy with ``changes``, checked like the original."""
        try:
            return replace(self, **changes)
        except ValidationError as exc:
            raise config_error(exc) from None


def config_error(exc: ValidationError) -> ConfigError:
    """Every problem pydantic found, each under its field's variable."""
    problems: dict[str, str] = {}
    for e in exc.errors():
        name = var(str(e["loc"][0])) if e.get("loc") else "BOTYARD_*"
        message = e["msg"].removeprefix("Value error, ")
        if e.get("type") != "value_error" and "input" in e:
            message += f", not {e['input']!r}"
        problems.setdefault(name, message[:1].lower() + message[1:])
    return ConfigError.of(problems)
