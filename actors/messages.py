"""Messages between actors: small frozen dataclasses, never shared mutable state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from botyard.protocol import TurnRequest

if TYPE_CHECKING:
    from uuid import UUID

    import pykka

    from botyard.errors import BotyardError
    from botyard.models.definition import BotDefinition
    from botyard.models.runtime import Predictor


@dataclass(frozen=True, slots=True)
class TurnWork:
    """A validated turn request, on its way to classification."""

    request: TurnRequest
    reply_to: str
    received_at: float


@dataclass(frozen=True, slots=True)
class Turns:
    """Turns for one intent worker that arrived in one pass of the NATS loop, in one message."""

    works: tuple[TurnWork, ...]


@dataclass(frozen=True, slots=True)
class ClassifiedTurn:
    """A turn with its intent, on its way to the conversation that records it."""

    work: TurnWork
    intent: str
    confidence: float
    snapshot: str
    definition: "BotDefinition"
    entities: tuple[dict, ...] = ()
    """``{entity, value, start, end, extractor, confidence}`` for each entity found."""
    fallback: bool = False
    """The model says "I don't know": out of scope or below the bot's threshold."""
    fallback_reason: str | None = None
    """Why (``botyard.models.prediction.FALLBACK_REASONS``); in the reply only, never recorded."""
    score: float | None = None
    """The in-scope score (``botyard.models.scope``); in the reply only, never recorded."""


@dataclass(frozen=True, slots=True)
class Classified:
    """Turns classified one after another, handed to a conversation actor in one message:
    waking a thread costs more than the message, so a busy worker wakes it once per batch."""

    turns: tuple[ClassifiedTurn, ...]


@dataclass(frozen=True, slots=True)
class ActionsDone:
    """To a conversation actor, from the bus: what the actions its parked turns called came
    to, ``(conversation key, Result)`` each (those that ended in one pass of the NATS loop)."""

    results: tuple[tuple[tuple[str, str, str], object], ...]


@dataclass(frozen=True, slots=True)
class Sweep:
    """Drop conversations idle for longer than the configured time."""


@dataclass(frozen=True, slots=True)
class ReleaseHeld:
    """To conversation actors, on the supervisor's tick: answer the user turns of handed-off
    conversations that waited longer than the handoff wait for an agent (with no text)."""


@dataclass(frozen=True, slots=True)
class Passivate:
    """Drop resident conversations now (they come back by replay): every one, or those
    for which ``keep(tenant, bot, conversation_id)`` is false."""

    keep: Callable[[str, str, str], bool] | None = None


@dataclass(frozen=True, slots=True)
class Inspect:
    """Ask a conversation actor for one conversation's state.

    With ``activate`` a conversation that is not in memory is rebuilt from its events;
    without it, ``None`` answers for one that is not resident (or does not exist).
    """

    tenant: str
    bot: str
    conversation_id: str
    activate: bool = False


@dataclass(frozen=True, slots=True)
class TakeSnapshot:
    """To the snapshotter: record this conversation's state at ``version``."""

    aggregate_id: "UUID"
    version: int


@dataclass(frozen=True, slots=True)
class AliasChanged:
    """An alias of a bot now names ``target``; ``version`` orders moves of the same bot."""

    tenant: str
    bot: str
    alias: str
    target: str
    version: int


@dataclass(frozen=True, slots=True)
class Reconcile:
    """Read alias moves recorded since the last look (missed notifications, failed loads)."""


@dataclass(frozen=True, slots=True)
class RetryLoads:
    """From the loader to workers, on each reconcile tick: load again, when their backoff
    has passed, the snapshots aliases name that could not be loaded (served meanwhile: the
    alias's previous target)."""


@dataclass(frozen=True, slots=True)
class Install:
    """From the loader to workers: ``key`` (tenant, bot, alias) now names ``snapshot``."""

    key: tuple[str, str, str]
    snapshot: str


@dataclass(frozen=True, slots=True)
class Load:
    """From a worker to the loader: load and verify this snapshot, then answer ``Loaded``."""

    snapshot: str
    worker: "pykka.ActorRef"


@dataclass(frozen=True, slots=True)
class Fetched:
    """To the loader, from its store's loop thread: the bytes of a snapshot ``load`` asked for
    (or why they could not be read), not yet verified."""

    load: Load
    data: bytes | None
    error: "BotyardError | None"
    started: float


@dataclass(frozen=True, slots=True)
class Loaded:
    """From the loader to a worker: the snapshot is loaded (``predictor``) or refused (``error``)."""

    snapshot: str
    predictor: "Predictor | None"
    error: str = ""
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class AdminWork:
    """An admin request from NATS, for the administrator actor."""

    verb: str
    data: bytes
    as_json: bool
    reply_to: str
    tenant: str | None = None
    """From ``botyard.admin.<tenant>.<verb>``: the request is that tenant's (its body may name
    no other tenant, and its actor is ``tenant:<tenant>``, whatever the body says)."""
