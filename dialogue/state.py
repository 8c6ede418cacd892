"""A conversation's dialogue state, the events that change it, and the pure :func:`apply`.

The state is never stored on its own: it is ``replay(events)``, the fold of :func:`apply`
over every dialogue event the conversation committed, oldest first. Each event is recorded
inside its turn's event as a plain dict (:func:`to_dict`): ``{"name": "SlotSet", "version": 1,
"slot": "order_number", "value": "4821377", "by": "entity"}``. :func:`from_dict` reads it back,
refusing names it does not know and versions newer than its own, and upcasting older ones
through :data:`UPCASTERS` (``(name, version) -> function`` giving the dict at ``version + 1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import reduce
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Iterable, Mapping

from botyard.dialogue.errors import EventFormatError
from botyard.dialogue.slots import Value


def _frozen(mapping: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class DialogueState:
    slots: Mapping[str, Value] = field(default_factory=_frozen)
    form: str | None = None
    """The active form (its intent's name)."""
    asked: str | None = None
    """The slot the active form asked for last and is waiting for."""
    tries: int = 0
    """Bad answers to the asked slot so far."""
    confirming: bool = False
    """The active form is complete and waits for yes or no."""
    fallbacks: int = 0
    """Fallback turns in a row (counted only when the bot escalates)."""
    handed_off: bool = False
    asks: Mapping[str, int] = field(default_factory=_frozen)
    """How often each slot's question was asked: it rotates the phrasings."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", _frozen({k: tuple(v) if isinstance(v, list) else v for k, v in self.slots.items()}))
        object.__setattr__(self, "asks", _frozen(self.asks))

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["slots"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.slots.items()}
        out["asks"] = dict(self.asks)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DialogueState":
        return cls(**data)


class DialogueEvent:
    """Base of the event payloads: a stable ``name`` and ``version`` each."""

    __slots__ = ()
    name: ClassVar[str]
    version: ClassVar[int] = 1


def _event(cls):
    cls = dataclass(frozen=True, slots=True)(cls)
    cls.name = cls.__name__
    EVENTS[cls.name] = cls
    return cls


EVENTS: dict[str, type[DialogueEvent]] = {}
UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}


@_event
class SlotSet(DialogueEvent):
    slot: str
    value: Value
    by: str = "entity"
    """``entity``, ``answer`` (to its question), ``correction``, ``rule`` or ``action``."""


@_event
class SlotCleared(DialogueEvent):
    slot: str
    by: str = "rule"
    """``rule``, ``form`` (the form that needed it ended) or ``action``."""


@_event
class SlotRejected(DialogueEvent):
    """A value for ``slot`` failed its validation (``value`` ``None``: no answer at all)."""

    slot: str
    value: Any
    reason: str


@_event
class FormStarted(DialogueEvent):
    form: str


@_event
class SlotAsked(DialogueEvent):
    slot: str
    phrasing: int
    """Which of the slot's questions was asked."""


@_event
class ConfirmationAsked(DialogueEvent):
    form: str


@_event
class ConfirmationAnswered(DialogueEvent):
    form: str
    affirmed: bool


@_event
class FormCompleted(DialogueEvent):
    form: str


@_event
class FormCancelled(DialogueEvent):
    form: str
    reason: str
    """``user`` (cancel), ``denied`` (no to the confirmation), ``handoff``, or ``removed`` (the
    bot, reloaded, no longer has this form)."""


@_event
class FormAbandoned(DialogueEvent):
    """The form gave up after too many bad answers to ``slot``."""

    form: str
    slot: str


@_event
class FallbackCounted(DialogueEvent):
    pass


@_event
class FallbacksReset(DialogueEvent):
    pass


@_event
class HandedOff(DialogueEvent):
    reason: str
    """``intent`` (one of the handoff intents), ``escalation``, or an action's reason."""


@_event
class HandedBack(DialogueEvent):
    pass


@_event
class ActionCalled(DialogueEvent):
    """An action was called and came to ``status`` (``ok``, ``later``, ``error``, ``timeout``,
    ``no_responders``, ``refused``); ``reply`` is its validated reply as received (what replay
    and what-if use instead of calling again). The slots it set follow as ``SlotSet`` events
    (``by: action``)."""

    action: str
    key: str
    status: str
    reply: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""
    attempts: int = 1
    duration_ms: float = 0.0


_NO_FORM = dict(form=None, asked=None, tries=0, confirming=False)
_FIELDS = DialogueState.__slots__  # type: ignore[attr-defined]


def _with(state: DialogueState, **changes: Any) -> DialogueState:
    """``dataclasses.replace`` without its introspection (a third of its cost: apply runs on
    every dialogue event of every turn, live and in replay)."""
    if "slots" in changes:
        changes["slots"] = _frozen({k: tuple(v) if isinstance(v, list) else v for k, v in changes["slots"].items()})
    if "asks" in changes:
        changes["asks"] = _frozen(changes["asks"])
    new = object.__new__(DialogueState)
    for name in _FIELDS:
        object.__setattr__(new, name, changes[name] if name in changes else getattr(state, name))
    return new


def apply(state: DialogueState, event: DialogueEvent) -> DialogueState:
    """The state after ``event``. Pure, total: any event applies to any state."""
    match event:
        case SlotSet(slot=slot, value=value):
            done = dict(asked=None, tries=0) if slot == state.asked else {}
            return _with(state, slots={**state.slots, slot: value}, **done)
        case SlotCleared(slot=slot):
            return _with(state, slots={k: v for k, v in state.slots.items() if k != slot})
        case SlotRejected(slot=slot):
            return _with(state, tries=state.tries + 1) if slot == state.asked else state
        case FormStarted(form=form):
            return _with(state, **{**_NO_FORM, "form": form})
        case SlotAsked(slot=slot):
            tries = state.tries if slot == state.asked else 0
            return _with(state, asked=slot, tries=tries, confirming=False, asks={**state.asks, slot: state.asks.get(slot, 0) + 1})
        case ConfirmationAsked():
            return _with(state, asked=None, tries=0, confirming=True)
        case ConfirmationAnswered():
            return _with(state, confirming=False)
        case FormCompleted() | FormCancelled() | FormAbandoned():
            return _with(state, **_NO_FORM)
        case FallbackCounted():
            return _with(state, fallbacks=state.fallbacks + 1)
        case FallbacksReset():
            return _with(state, fallbacks=0)
        case HandedOff():
            return _with(state, **_NO_FORM, fallbacks=0, handed_off=True)
        case HandedBack():
            return _with(state, handed_off=False)
        case ActionCalled():
            return state
    raise TypeError(f"not a dialogue event: {event!r}")


def replay(events: Iterable[DialogueEvent], state: DialogueState | None = None) -> DialogueState:
    """The fold of :func:`apply` over ``events`` (from the empty state by default)."""
    return reduce(apply, events, state if state is not None else DialogueState())


def to_dict(event: DialogueEvent) -> dict[str, Any]:
    out: dict[str, Any] = {"name": event.name, "version": event.version}
    for f in fields(event):  # type: ignore[arg-type]
        value = getattr(event, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def from_dict(data: Mapping[str, Any]) -> DialogueEvent:
    """An event from its recorded dict, upcast to the current version."""
    data = dict(data)
    name, version = data.get("name"), data.get("version")
    cls = EVENTS.get(name)  # type: ignore[arg-type]
    if cls is None:
        raise EventFormatError(f"unknown dialogue event {name!r}", event=name)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise EventFormatError(f"dialogue event {name} has no valid version: {version!r}", event=name)
    if version > cls.version:
        raise EventFormatError(f"dialogue event {name} v{version} is newer than this botyard reads (v{cls.version})", event=name)
    while version < cls.version:
        upcast = UPCASTERS.get((name, version))
        if upcast is None:
            raise EventFormatError(f"no upcaster for dialogue event {name} v{version}", event=name)
        data, version = upcast(data), version + 1
    body = {k: v for k, v in data.items() if k not in ("name", "version")}
    wanted = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    if set(body) - wanted:
        raise EventFormatError(f"dialogue event {name} has unknown fields {sorted(set(body) - wanted)}", event=name)
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in body.items()})
    except TypeError as exc:
        raise EventFormatError(f"dialogue event {name}: {exc}", event=name) from None
