r"""Slots: named, typed values a conversation holds across turns.

```yaml
dialogue:
  slots:
    order_number:
      type: text                 # text (default) | number | boolean | categorical | list
      entity: order_number       # filled from this entity of the bot...
      fill: always               # ...on any turn (default), while a form needing it runs (form),
                                 # or only as the answer to its question (asked)
      regex: '\d{7}'             # the value (each item of a list) must match all of it
      questions: ["What's your order number?", "Which order is it?"]   # rotated
      reask: "An order number has 7 digits. Which order is it?"        # after a bad answer
      max_tries: 3               # bad answers before the form gives up
    item: {type: categorical, values: [tent, hiking boots], entity: product, fill: form}
    reason: {type: text, from_text: true, fill: asked}   # the answer is the user's text itself
```

``from_text`` reads the asked slot's answer from the text when no entity gave one: the text
itself (text), its first number (number), yes/no (boolean), a value it names (categorical).

A slot fills from a system entity (:mod:`botyard.models.system`) like from any other: a
number slot from a ``number``, ``ordinal`` or ``duration`` entity (seconds), and from a
``money`` entity its amount (``"12.50 USD"`` gives 12.5); a text slot from any kind (a date
as ``"2026-12-11"``, a time as ``"15:30"``, money as ``"12.50 USD"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from botyard.dialogue.errors import Problems
from botyard.models.definition import INTENT_RE
from botyard.models.names import identifier_problem
from botyard.models.system.kinds import TEXT_KINDS
from botyard.models.system.money import VALUE_RE as MONEY_RE

TYPES = ("text", "number", "boolean", "categorical", "list")
FILLS = ("always", "form", "asked")
KEYS = {"type", "values", "regex", "entity", "fill", "from_text", "questions", "reask", "max_tries"}
NUMBER_RE = re.compile(r"-?\d+(?:[.,]\d+)?")
TRUE_WORDS = {"true", "yes", "y", "1"}
FALSE_WORDS = {"false", "no", "n", "0"}

Value = str | int | float | bool | tuple[str, ...]
"""A slot's value: lists are tuples, numbers ints when whole."""


@dataclass(frozen=True, slots=True)
class Slot:
    name: str
    type: str = "text"
    values: tuple[str, ...] = ()
    """Categorical: the allowed values (canonical spelling); list: allowed items, if any."""
    regex: str = ""
    entity: str = ""
    fill: str = "always"
    from_text: bool = False
    questions: tuple[str, ...] = ()
    reask: str = ""
    max_tries: int = 3

    @property
    def fillable(self) -> bool:
        """Whether an answer can ever fill it: from an entity, or from the text."""
        return bool(self.entity) or self.from_text


def coerce(slot: Slot, raw: Any) -> tuple[Value | None, str]:
    """``(value, "")`` when ``raw`` is a valid value of ``slot``, else ``(None, why not)``."""
    if slot.type == "list":
        items = tuple(raw) if isinstance(raw, (list, tuple)) else (raw,)
        out = []
        for item in items:
            value, why = _scalar(slot, "categorical" if slot.values else "text", item)
            if why:
                return None, why
            out.append(value)
        return (tuple(out), "") if out else (None, "empty list")
    return _scalar(slot, slot.type, raw)


def _scalar(slot: Slot, kind: str, raw: Any) -> tuple[Value | None, str]:
    if isinstance(raw, (list, tuple, dict)) or raw is None:
        return None, f"not a single {kind} value"
    if kind == "number":
        if isinstance(raw, bool):
            return None, "not a number"
        text = str(raw).strip()
        if (money := MONEY_RE.fullmatch(text)) is not None:
            text = money.group(1)  # a money entity's amount
        try:
            number = float(text.replace(",", "."))
        except ValueError:
            return None, f"{raw!r} is not a number"
        value: Value = int(number) if number.is_integer() else number
    elif kind == "boolean":
        word = str(raw).strip().lower()
        if isinstance(raw, bool):
            value = raw
        elif word in TRUE_WORDS | FALSE_WORDS:
            value = word in TRUE_WORDS
        else:
            return None, f"{raw!r} is not yes or no"
    else:
        value = " ".join(str(raw).split())
        if not value:
            return None, "empty"
        if kind == "categorical":
            canonical = {v.casefold(): v for v in slot.values}
            if value.casefold() not in canonical:
                return None, f"{value!r} is not one of {list(slot.values)}"
            value = canonical[value.casefold()]
    if slot.regex and not re.fullmatch(slot.regex, format_value(value)):
        return None, f"{format_value(value)!r} does not match {slot.regex!r}"
    return value, ""


def from_text(slot: Slot, text: str, said: str | None) -> Any:
    """The raw answer a ``from_text`` slot reads from the text (``None``: nothing there);
    ``said`` is the built-in the text is (``affirm``/``deny``), if any."""
    text = " ".join(text.split())
    if slot.type == "number":
        m = NUMBER_RE.search(text)
        return m.group() if m else None
    if slot.type == "boolean":
        return {"affirm": True, "deny": False}.get(said or "", text or None)
    if slot.type == "categorical":
        named = [v for v in slot.values if re.search(rf"(?<!\w){re.escape(v)}(?!\w)", text, re.IGNORECASE)]
        return named[0] if len(named) == 1 else text or None
    return text or None


def format_value(value: Value) -> str:
    """How a value reads in a reply: lists joined by commas, booleans yes/no, whole numbers without ``.0``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ", ".join(value)
    return str(value)


def parse_slots(raw: Any, entities: Mapping[str, Any], problems: Problems) -> tuple[Slot, ...]:
    """The ``slots`` mapping; ``entities`` maps the bot's entity names to their definitions."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problems.add("dialogue.slots", "must be a mapping of slot name to its definition")
        return ()
    return tuple(s for name, body in raw.items() if (s := _slot(name, body, entities, problems)) is not None)


def _slot(name: Any, body: Any, entities: Mapping[str, Any], problems: Problems) -> Slot | None:
    where = f"dialogue.slots.{name}"
    if not isinstance(name, str) or not INTENT_RE.match(name):
        problems.add(where, identifier_problem(name, "slot"))
        return None
    if body is None:
        body = {}
    if not isinstance(body, dict):
        problems.add(where, "must be a mapping (type, entity, questions, ...)")
        return None
    for key in sorted(set(body) - KEYS):
        problems.add(f"{where}.{key}", f"unknown key; expected one of {sorted(KEYS)}")
    kind = body.get("type", "text")
    typed = kind in TYPES
    if not typed:
        problems.add(f"{where}.type", f"must be one of {list(TYPES)}, got {kind!r}")
        kind = "categorical" if "values" in body else "text"
    values = _strings(body.get("values"), f"{where}.values", problems)
    if kind == "categorical" and not values:
        problems.add(f"{where}.values", "a categorical slot needs its list of values")
    if values and kind not in ("categorical", "list"):
        problems.add(f"{where}.values", f"only categorical and list slots have values, this one is {kind}")
    regex = body.get("regex", "")
    if not isinstance(regex, str):
        problems.add(f"{where}.regex", "must be a regular expression (a string)")
        regex = ""
    elif regex:
        try:
            re.compile(regex)
        except re.error as exc:
            problems.add(f"{where}.regex", f"does not compile: {exc}")
            regex = ""
    entity = body.get("entity", "")
    if not isinstance(entity, str):
        problems.add(f"{where}.entity", "must be the name of an entity")
        entity = ""
    if entity and entity not in entities:
        problems.add(f"{where}.entity", f"entity {entity!r} is not defined under 'entities'")
    elif entity and (why := _never_fills(kind, entities[entity])):
        problems.add(f"{where}.entity", why)
    elif entity and kind == "categorical":
        listed = {v.casefold() for v, _ in getattr(entities[entity], "values", ())}
        if listed and values and not listed & {v.casefold() for v in values}:
            problems.add(f"{where}.entity", f"none of list entity {entity!r}'s values is a value of this slot: it can never be filled")
    fill = body.get("fill", "always")
    if fill not in FILLS:
        problems.add(f"{where}.fill", f"must be one of {list(FILLS)}, got {fill!r}")
    from_txt = body.get("from_text", False)
    if not isinstance(from_txt, bool):
        problems.add(f"{where}.from_text", "must be true or false")
    elif from_txt and kind == "list":
        problems.add(f"{where}.from_text", "list slots are filled from entities only")
    tries = body.get("max_tries", 3)
    if isinstance(tries, bool) or not isinstance(tries, int) or tries < 1:
        problems.add(f"{where}.max_tries", f"must be a whole number of at least 1, got {tries!r}")
        tries = 3
    reask = body.get("reask", "")
    if not isinstance(reask, str):
        problems.add(f"{where}.reask", "must be a string")
    questions = _strings(body.get("questions"), f"{where}.questions", problems)
    return Slot(name, kind, tuple(values), regex, entity, fill if fill in FILLS else "always",
                from_txt is True, tuple(questions), reask if isinstance(reask, str) else "", tries)


def _never_fills(kind: str, entity: Any) -> str:
    """Why a slot of ``kind`` can never take a system entity's values ("" if it can)."""
    of = getattr(entity, "kind", "") if getattr(entity, "type", "") == "system" else ""
    if not of:
        return ""
    if kind == "boolean" or (kind == "number" and of in TEXT_KINDS - {"money"}):
        return f"system entity {entity.name!r} gives {of}s, which a {kind} slot never takes: make the slot text"
    return ""


def _strings(raw: Any, field: str, problems: Problems) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        problems.add(field, "must be a list of strings")
        return []
    out = []
    for i, item in enumerate(raw):
        if isinstance(item, bool):
            problems.add(f"{field}[{i}]", "YAML reads a bare yes, no, on or off as true/false: quote it ('yes')")
        elif not isinstance(item, str) or not item.strip():
            problems.add(f"{field}[{i}]", f"must be a non-empty string, got {item!r}")
        else:
            out.append(item.strip())
    return out
