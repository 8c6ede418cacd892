"""Conversation tests, the tenant's own: scripted conversations with what the bot must do on
each turn, played in process against one trained snapshot (``botyard test``, ``POST
.../tests``, and the ``tests`` of a gated promotion). The format is in docs/testing.md:

```yaml
conversations:
  - name: order status asks for the number and keeps it
    turns:
      - user: where is my order?
        intent: order_status
        form: order_status          # the active form after the turn (null: none)
        asked: order_number         # the slot the form waits for (null: none)
        reply_contains: "order number"
      - user: it's 4821377
        entities: [{entity: order_number, value: "4821377"}]   # found among the turn's entities
        slots: {order_number: "4821377"}                       # among the slots after the turn
        form: null
```

:func:`parse` reports every problem of a file at once (:class:`ConversationTestsError`);
:mod:`botyard.ops.conversation_test_runs` plays them.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any, Mapping

import yaml

from botyard import action_protocol as wire
from botyard.dialogue.spec import spec_of
from botyard.models.definition import OUT_OF_SCOPE, BotDefinition
from botyard.ops.errors import OpsError
from botyard.protocol import ProtocolError

EXPECTATIONS = ("intent", "fallback", "entities", "slots", "form", "asked", "confirming", "handed_off", "called", "reply",
                "reply_contains")
"""What a turn may expect, in the order they are checked and reported."""
TURN_KEYS = ("user", "actions", *EXPECTATIONS)
STUB_STATUSES = ("timeout", "no_responders", "error")
"""What an ``actions`` stub may say instead of a reply: the call failed this way."""
FLAGS = ("fallback", "confirming", "handed_off")


class ConversationTestsError(OpsError):
    """A conversation-tests file or body is invalid: ``field`` and ``problem`` are the first
    problem's, ``problems`` every ``{field, problem}``; the message lists them all, one a line."""

    code = "invalid_conversation_tests"

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        lines = [f"{source}: {field}: {problem}" for field, problem in problems]
        message = lines[0] if len(lines) == 1 else f"{source}: {len(lines)} problems\n" + "\n".join(lines)
        super().__init__(
            message, source=source, field=problems[0][0], problem=problems[0][1],
            problems=[{"field": f, "problem": p} for f, p in problems],
        )


# -- the format ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserTurn:
    user: str
    expect: tuple[tuple[str, Any], ...]
    """``(expectation, expected value)`` for each one given, in :data:`EXPECTATIONS` order."""
    actions: Mapping[str, Any] = dataclass_field(default_factory=dict)
    """Per action, what it answers if the turn calls it: a reply (docs/actions.md) or one of
    :data:`STUB_STATUSES`; an action not given answers ``{}`` (done, nothing to say)."""


@dataclass(frozen=True, slots=True)
class Conversation:
    name: str
    turns: tuple[UserTurn, ...]


@dataclass(frozen=True, slots=True)
class ConversationTests:
    conversations: tuple[Conversation, ...]
    source: str = "<tests>"

    @property
    def turns(self) -> int:
        return sum(len(c.turns) for c in self.conversations)


def load(path: str | Path, *, definition: BotDefinition | None = None) -> ConversationTests:
    """Read and validate one conversation-tests file (names checked against ``definition``)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConversationTestsError(source, [("(file)", f"cannot read: {exc.strerror}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConversationTestsError(source, [("(file)", f"not valid YAML: {exc}")]) from None
    return parse(data, source=source, definition=definition)


def parse(data: Any, *, source: str = "<tests>", definition: BotDefinition | None = None) -> ConversationTests:
    """A parsed tests mapping (``{conversations: [...]}``, or the list of conversations alone),
    every problem reported at once; with ``definition``, the intents, entities, slots and forms
    it names must be the bot's."""
    problems: list[tuple[str, str]] = []
    add = lambda field, problem: problems.append((field, problem))
    if isinstance(data, dict):
        for key in sorted(set(data) - {"conversations"}, key=str):
            add(str(key), "unknown key; expected 'conversations'")
        data = data.get("conversations")
        where = "conversations"
    else:
        where = "conversations" if isinstance(data, list) else "(top level)"
    if not isinstance(data, list) or not data:
        add(where, "must be a non-empty list of conversations, each with a name and turns")
        data = []
    names = _names(definition)
    conversations, seen = [], set()
    for i, raw in enumerate(data):
        conversation = _conversation(raw, f"conversations[{i}]", names, add)
        if conversation is None:
            continue
        if conversation.name in seen:
            add(f"conversations[{i}].name", f"{conversation.name!r} is the name of an earlier conversation too")
        seen.add(conversation.name)
        conversations.append(conversation)
    if problems:
        raise ConversationTestsError(source, problems)
    return ConversationTests(tuple(conversations), source)


def _names(definition: BotDefinition | None) -> dict[str, set[str]] | None:
    if definition is None:
        return None
    spec = spec_of(definition)
    return {
        "intent": {i.name for i in definition.intents} | {OUT_OF_SCOPE},
        "entity": {e.name for e in definition.entities},
        "slot": {s.name for s in spec.slots},
        "form": {f.intent for f in spec.forms},
        "action": {a.name for a in spec.actions},
    }


def _conversation(raw: Any, where: str, names, add) -> Conversation | None:
    if not isinstance(raw, dict):
        add(where, "must be a mapping with 'name' and 'turns'")
        return None
    for key in sorted(set(raw) - {"name", "turns"}, key=str):
        add(f"{where}.{key}", "unknown key; expected 'name' and 'turns'")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        add(f"{where}.name", "required: a non-empty string naming the conversation")
        name = ""
    turns = raw.get("turns")
    if not isinstance(turns, list) or not turns:
        add(f"{where}.turns", "must be a non-empty list of turns, each with 'user'")
        turns = []
    parsed = [_turn(t, f"{where}.turns[{j}]", names, add) for j, t in enumerate(turns)]
    return Conversation(name, tuple(t for t in parsed if t is not None))


def _turn(raw: Any, where: str, names, add) -> UserTurn | None:
    if not isinstance(raw, dict):
        add(where, "must be a mapping with 'user' and expectations")
        return None
    for key in sorted(set(raw) - set(TURN_KEYS), key=str):
        add(f"{where}.{key}", f"unknown key; expected 'user' and any of {list(EXPECTATIONS)}")
    user = raw.get("user")
    if isinstance(user, bool):
        add(f"{where}.user", "YAML reads a bare yes, no, on or off as true/false: quote it ('yes')")
    elif not isinstance(user, str) or not user.strip():
        add(f"{where}.user", "required: what the user says, as a string (quote numbers: '4821377')")
    expect = []
    for key in EXPECTATIONS:
        if key in raw:
            value = _expectation(key, raw[key], f"{where}.{key}", names, add)
            expect.append((key, value))
    return UserTurn(user if isinstance(user, str) else "", tuple(expect), _stubs(raw.get("actions"), f"{where}.actions", names, add))


def _stubs(raw: Any, where: str, names, add) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        add(where, "must map action names to the reply each gives (or timeout, no_responders, error)")
        return {}
    out = {}
    for name, reply in raw.items():
        if names is not None and name not in names["action"]:
            add(f"{where}.{name}", f"the bot has no action {name!r}; known: {', '.join(sorted(names['action'])) or 'none'}")
        if isinstance(reply, str) and reply in STUB_STATUSES:
            out[str(name)] = reply
            continue
        try:
            out[str(name)] = wire.decode_reply(wire.encode_reply(reply if isinstance(reply, dict) else {"": reply}))
        except ProtocolError as exc:
            add(f"{where}.{name}", f"{exc.message} (or one of {list(STUB_STATUSES)})")
    return out


def _expectation(key: str, value: Any, where: str, names, add) -> Any:
    def known(kind: str, name: Any, field: str = where) -> None:
        if names is not None and isinstance(name, str) and name not in names[kind]:
            add(field, f"the bot has no {kind} {name!r}; known: {', '.join(sorted(names[kind])) or 'none'}")

    if key in FLAGS:
        if not isinstance(value, bool):
            add(where, "must be true or false")
    elif key == "intent":
        if not isinstance(value, str) or not value:
            add(where, "must be an intent name")
        known("intent", value)
    elif key in ("form", "asked"):
        if value is not None and (not isinstance(value, str) or not value):
            add(where, f"must be a {'form (its intent' if key == 'form' else 'slot (its'} name) or null for none")
        known("form" if key == "form" else "slot", value)
    elif key == "called":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            add(where, "must be the list of actions the turn calls, in order ([] for none)")
            return ()
        for v in value:
            known("action", v)
        return tuple(value)
    elif key == "reply":
        if not isinstance(value, str):
            add(where, "must be the exact reply, as a string")
    elif key == "reply_contains":
        parts = value if isinstance(value, list) else [value]
        if not parts or not all(isinstance(p, str) and p for p in parts):
            add(where, "must be a non-empty string, or a list of them (each must appear in the reply)")
        return tuple(parts) if isinstance(value, list) else value
    elif key == "entities":
        return _entities(value, where, known, add)
    elif key == "slots":
        if not isinstance(value, dict) or not value:
            add(where, "must be a mapping of slot name to its value (null: not set)")
            return {}
        for name, v in value.items():
            known("slot", name, f"{where}.{name}")
            if not _plain(v):
                add(f"{where}.{name}", "must be a text, number, true/false, a list of them, or null (not set)")
        return {str(k): tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    return value


def _entities(value: Any, where: str, known, add) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(value, list):
        add(where, "must be a list of {entity, value} mappings")
        return ()
    out = []
    for k, item in enumerate(value):
        at = f"{where}[{k}]"
        if not isinstance(item, dict) or not isinstance(item.get("entity"), str) or set(item) - {"entity", "value"}:
            add(at, "must be a mapping with 'entity' (a name) and, optionally, 'value'")
            continue
        known("entity", item["entity"], f"{at}.entity")
        if "value" in item and (item["value"] is None or not _plain(item["value"])):
            add(f"{at}.value", "must be a text, number or true/false")
        out.append(dict(item))
    return tuple(out)


def _plain(value: Any) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, (str, int, float, bool)) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))
