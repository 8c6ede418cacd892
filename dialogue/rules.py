"""Rules and conditional responses: what slot values change, and what the bot says, on an intent.

```yaml
dialogue:
  slots:
    delivery_country: {type: categorical, values: [Belgium, Germany], entity: country}
    order_number: {entity: order_number}
    returning: {type: boolean}
  responses:                  # tried before the intent's own responses, in order
    shipping_costs:
      - {when: delivery_country == Belgium, text: "Shipping to Belgium is free over 30 EUR."}
  rules:
    - intent: greeting        # an intent, or a list of them (not "on:": YAML reads that as true)
      when: order_number      # optional condition (see conditions)
      set: {returning: true}
      clear: [order_number]
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from botyard.dialogue.conditions import Condition, parse_condition
from botyard.dialogue.errors import Problems
from botyard.dialogue.slots import Slot, Value, coerce

RULE_KEYS = {"intent", "when", "set", "clear", "action"}


@dataclass(frozen=True, slots=True)
class ConditionalResponse:
    when: Condition
    text: str


@dataclass(frozen=True, slots=True)
class Rule:
    intents: tuple[str, ...]
    when: Condition | None = None
    set: tuple[tuple[str, Value], ...] = ()
    clear: tuple[str, ...] = ()
    action: str = ""
    """Called when the intent is answered outside a form (:mod:`botyard.dialogue.actions`)."""


def _when(text: Any, field: str, slots: Mapping[str, Slot], p: Problems) -> Condition | None:
    try:
        return parse_condition(text, slots)
    except ValueError as exc:
        p.add(field, str(exc))
        return None


def parse_responses(raw: Any, intents: set[str], slots: Mapping[str, Slot], p: Problems) -> tuple:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        p.add("dialogue.responses", "must be a mapping of intent name to a list of {when, text}")
        return ()
    out = []
    for intent, items in raw.items():
        where = f"dialogue.responses.{intent}"
        if intent not in intents:
            p.add(where, f"intent {intent!r} is not defined under 'intents'")
        if not isinstance(items, list) or not items:
            p.add(where, "must be a non-empty list of {when, text}")
            continue
        made = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or set(item) != {"when", "text"} or not isinstance(item["text"], str) or not item["text"]:
                p.add(f"{where}[{i}]", "must be a mapping with exactly 'when' (a condition) and 'text'")
            elif (cond := _when(item["when"], f"{where}[{i}].when", slots, p)) is not None:
                made.append(ConditionalResponse(cond, item["text"]))
        out.append((str(intent), tuple(made)))
    return tuple(out)


def parse_rules(raw: Any, intents: set[str], slots: Mapping[str, Slot], p: Problems) -> tuple[Rule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        p.add("dialogue.rules", "must be a list of {on, when, set, clear}")
        return ()
    out = []
    for i, body in enumerate(raw):
        where = f"dialogue.rules[{i}]"
        if not isinstance(body, dict) or set(body) - RULE_KEYS or not ({"set", "clear", "action"} & set(body)):
            p.add(where, "must be a mapping with 'intent', optional 'when', and 'set', 'clear' and/or 'action'")
            continue
        on = body.get("intent")
        on = [on] if isinstance(on, str) else on
        if not isinstance(on, list) or not on:
            p.add(f"{where}.intent", "must name an intent (or a list of them)")
            on = []
        for name in on:
            if name not in intents:
                p.add(f"{where}.intent", f"intent {name!r} is not defined under 'intents'")
        when = _when(body["when"], f"{where}.when", slots, p) if "when" in body else None
        sets = []
        raw_set = body.get("set", {})
        for slot, value in (raw_set.items() if isinstance(raw_set, dict) else ()):
            if slot not in slots:
                p.add(f"{where}.set.{slot}", f"slot {slot!r} is not defined under 'dialogue.slots'")
                continue
            good, why = coerce(slots[slot], value)
            if why:
                p.add(f"{where}.set.{slot}", why)
            else:
                sets.append((slot, good))
        if not isinstance(raw_set, dict):
            p.add(f"{where}.set", "must be a mapping of slot name to value")
        clear = body.get("clear", [])
        if not isinstance(clear, list):
            p.add(f"{where}.clear", "must be a list of slot names")
            clear = []
        for slot in clear:
            if slot not in slots:
                p.add(f"{where}.clear", f"slot {slot!r} is not defined under 'dialogue.slots'")
        action = body.get("action", "")
        if not isinstance(action, str):
            p.add(f"{where}.action", "must name an action under 'dialogue.actions'")
            action = ""
        out.append(Rule(tuple(on), when, tuple(sets), tuple(s for s in clear if s in slots), action))
    return tuple(out)
