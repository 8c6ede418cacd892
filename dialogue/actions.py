"""Actions: the tenant's own code, called from the dialogue as a NATS service in any language.

```yaml
dialogue:
  actions:
    look_up_order:
      timeout: 2            # seconds per try (default 2, at most 30)
      retries: 1            # more tries after a timeout or no responders (default 1, at most 5)
      backoff: 0.1          # seconds before the first retry, doubled after each (default 0.1)
      failure: "Sorry, I can't reach our order system right now."   # said when the call fails
      slots: [order_state]  # the slots the action may set or clear (default: none)
      responses:            # texts its reply can name with "response" ({placeholders} as anywhere)
        shipped: "Order {order_number} is on its way."
  forms:
    order_status: {slots: [order_number], action: look_up_order}   # called when the form completes
  rules:
    - {intent: check_stock, action: check_stock}                    # called when the intent is answered
```

The engine stays pure: a step that reaches an action ends with :attr:`Outcome.call`
(:class:`Call`), the caller (the conversation actor live, the recorded events in replay and
what-if) gets its :class:`Result`, and :func:`resume` records the ``ActionCalled`` event and
applies the reply. The wire contract is :mod:`botyard.action_protocol` (docs/actions.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from botyard import action_protocol as wire
from botyard.action_protocol import ActionReply
from botyard.dialogue.errors import Problems
from botyard.dialogue.slots import Slot, Value, coerce

ACTION_KEYS = {"timeout", "retries", "backoff", "failure", "slots", "responses"}
DEFAULT_FAILURE = "Sorry, I can't do that right now. Please try again in a moment."
MAX_CALLS = 4
"""Calls in one turn at most (an action and its follow-ups)."""
WOULD_CALL = "would_call"
"""What-if only: the re-run reached an action the recorded turn did not call; it is not called."""


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    timeout: float = 2.0
    retries: int = 1
    backoff: float = 0.1
    failure: str = DEFAULT_FAILURE
    slots: tuple[str, ...] = ()
    responses: tuple[tuple[str, str], ...] = ()

    def response(self, name: str) -> str | None:
        return next((text for n, text in self.responses if n == name), None)


@dataclass(frozen=True, slots=True)
class Call:
    """What a step asks for: call ``action`` (the turn's ``index``-th call), with the slots
    as they were when it was decided; ``respond`` names the intent whose response is said when
    the action's reply has no text of its own."""

    action: str
    index: int = 0
    slots: Mapping[str, Value] = field(default_factory=dict)
    form: str | None = None
    respond: str = ""


@dataclass(frozen=True, slots=True)
class Result:
    """What a call came to: a status of :mod:`botyard.action_protocol` (``ok``, ``later``,
    ``error``, ``timeout``, ``no_responders``, ``refused``) or :data:`WOULD_CALL`."""

    status: str
    reply: ActionReply = ActionReply()
    error: str = ""
    key: str = ""
    attempts: int = 0
    duration_ms: float = 0.0

    @classmethod
    def recorded(cls, event: Any) -> "Result":
        """From a recorded ``ActionCalled`` event: replay uses it instead of calling again."""
        reply = event.reply or {}
        return cls(event.status, _reply_of(reply), event.error, event.key, event.attempts, event.duration_ms)


def _reply_of(data: Mapping[str, Any]) -> ActionReply:
    return ActionReply(
        text=data.get("text", ""), response=data.get("response", ""), slots=dict(data.get("slots", {})),
        clear=tuple(data.get("clear", ())), followup=data.get("followup", ""), handoff=data.get("handoff", ""),
        later=bool(data.get("later", False)), error=data.get("error"),
    )


def parse_actions(raw: Any, slots: Mapping[str, Slot], p: Problems) -> tuple[Action, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        p.add("dialogue.actions", "must be a mapping of action name to its declaration")
        return ()
    out = []
    for name, body in raw.items():
        where = f"dialogue.actions.{name}"
        if not isinstance(name, str) or not wire.ACTION_NAME_RE.match(name):
            p.add(where, "an action's name is a letter then up to 63 letters, digits, '_' or '-' (one NATS subject token)")
            continue
        if body is None:
            body = {}
        if not isinstance(body, dict):
            p.add(where, f"must be a mapping with some of {sorted(ACTION_KEYS)}")
            continue
        for key in sorted(set(body) - ACTION_KEYS):
            p.add(f"{where}.{key}", f"unknown key; expected one of {sorted(ACTION_KEYS)}")
        timeout = _number(body, "timeout", 2.0, 0.01, 30.0, where, p)
        backoff = _number(body, "backoff", 0.1, 0.0, 10.0, where, p)
        retries = body.get("retries", 1)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 5:
            p.add(f"{where}.retries", f"must be a whole number from 0 to 5, got {retries!r}")
            retries = 1
        failure = body.get("failure", DEFAULT_FAILURE)
        if not isinstance(failure, str) or not failure.strip():
            p.add(f"{where}.failure", "must be a non-empty text: what the bot says when the action fails")
            failure = DEFAULT_FAILURE
        names = body.get("slots", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            p.add(f"{where}.slots", "must be a list of slot names")
            names = []
        for i, n in enumerate(names):
            if n not in slots:
                p.add(f"{where}.slots[{i}]", f"slot {n!r} is not defined under 'dialogue.slots'")
        responses = body.get("responses", {})
        if not isinstance(responses, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in responses.items()):
            p.add(f"{where}.responses", "must map response names to non-empty texts")
            responses = {}
        out.append(Action(name, timeout, retries, backoff, failure, tuple(n for n in names if n in slots), tuple(responses.items())))
    return tuple(out)


def _number(body: Mapping[str, Any], key: str, default: float, low: float, high: float, where: str, p: Problems) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        p.add(f"{where}.{key}", f"must be a number of seconds from {low} to {high}, got {value!r}")
        return default
    return float(value)


def check_reply(action: Action, reply: ActionReply, declared: Mapping[str, Slot], actions: Mapping[str, Action],
                intents: Mapping[str, Any]) -> str:
    """Why the dialogue refuses ``reply`` (empty: it does not): a slot the action does not
    declare, a value its slot refuses, a response or follow-up that does not exist."""
    for name, value in reply.slots.items():
        if name not in action.slots:
            return f"sets slot {name!r}, which action {action.name!r} does not declare (dialogue.actions.{action.name}.slots)"
        _, why = coerce(declared[name], value)
        if why:
            return f"slot {name!r}: {why}"
    for name in reply.clear:
        if name not in action.slots:
            return f"clears slot {name!r}, which action {action.name!r} does not declare"
    if reply.response and action.response(reply.response) is None and reply.response not in intents:
        return f"response {reply.response!r} is neither one of action {action.name!r}'s responses nor an intent"
    if reply.followup and reply.followup not in actions:
        return f"follow-up {reply.followup!r} is not an action of this bot"
    return ""
