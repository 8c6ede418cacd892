"""Conditions on slot values: a small declarative language, no code.

```
delivery_country == Belgium
order_total >= 50 and not vip          # a bare slot: it is set (and not false or empty)
item in [tent, 'sleeping bag'] or items contains tent
```

Grammar: ``condition := clause ("or" clause)*``, ``clause := test ("and" test)*``,
``test := ["not"] slot [op value | ["not"] in [value, ...] | contains value]`` with ``op``
one of ``== != < <= > >=`` (the ordering ones for number slots only). A value is a number,
``true``/``false``/``yes``/``no``, a quoted string or bare words. Literals are checked against
the slot when the bot loads (a categorical value must be one of its values). Text compares
case-insensitively. Any test of an unset slot is false, except ``not ...`` of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from botyard.dialogue.slots import Slot, Value, coerce

TOKEN_RE = re.compile(r"""\s*(==|!=|<=|>=|<|>|\[|\]|,|'[^']*'|"[^"]*"|[^\s\[\],=!<>'"]+)""")
COMPARE = ("==", "!=", "<", "<=", ">", ">=")
ORDERING = ("<", "<=", ">", ">=")
WORDS = {"and", "or"}


@dataclass(frozen=True, slots=True)
class Test:
    slot: str
    op: str
    """``set``, one of :data:`COMPARE`, ``in`` or ``contains``."""
    values: tuple[Value, ...] = ()
    negate: bool = False


@dataclass(frozen=True, slots=True)
class Condition:
    text: str
    any_of: tuple[tuple[Test, ...], ...]
    """Holds when every test of one of these clauses holds."""

    @property
    def slots(self) -> set[str]:
        return {t.slot for clause in self.any_of for t in clause}


def parse_condition(text: str, slots: Mapping[str, Slot]) -> Condition:
    """Parse ``text`` against the bot's slots; ``ValueError`` says what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("must be a non-empty condition, like: delivery_country == Belgium")
    tokens, pos = [], 0
    while pos < len(text.rstrip()):
        m = TOKEN_RE.match(text, pos)
        if not m:
            raise ValueError(f"cannot read {text[pos:].strip()!r}")
        tokens.append(m.group(1))
        pos = m.end()
    reader = _Reader(tokens, slots)
    clauses = [reader.clause()]
    while reader.take("or"):
        clauses.append(reader.clause())
    if reader.peek() is not None:
        raise ValueError(f"unexpected {reader.peek()!r}")
    return Condition(text.strip(), tuple(clauses))


def holds(condition: Condition | None, slots: Mapping[str, Value]) -> bool:
    """Whether the condition holds for these slot values (``None``: always)."""
    if condition is None:
        return True
    return any(all(_test(t, slots.get(t.slot)) for t in clause) for clause in condition.any_of)


def _test(test: Test, value: Value | None) -> bool:
    if test.op == "set":
        result = value is not None and value is not False and value != () and value != ""
    elif value is None:
        result = False
    elif test.op == "in":
        result = any(_same(value, v) for v in test.values)
    elif test.op == "contains":
        result = any(_same(item, test.values[0]) for item in value)  # type: ignore[union-attr]
    elif test.op in ("==", "!="):
        result = _same(value, test.values[0]) == (test.op == "==")
    else:
        a, b = float(value), float(test.values[0])  # type: ignore[arg-type]
        result = {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[test.op]
    return result != test.negate


def _same(a: Value, b: Value) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()
    return a == b


class _Reader:
    def __init__(self, tokens: list[str], slots: Mapping[str, Slot]) -> None:
        self.tokens, self.i, self.slots = tokens, 0, slots

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, token: str) -> bool:
        if self.peek() is not None and self.peek().lower() == token:  # type: ignore[union-attr]
            self.i += 1
            return True
        return False

    def clause(self) -> tuple[Test, ...]:
        tests = [self.test()]
        while self.take("and"):
            tests.append(self.test())
        return tuple(tests)

    def test(self) -> Test:
        negate = self.take("not")
        name = self.peek()
        if name is None:
            raise ValueError("a test needs a slot name")
        if name not in self.slots:
            raise ValueError(f"slot {name!r} is not defined under 'dialogue.slots'")
        slot = self.slots[name]
        self.i += 1
        op = self.peek()
        if op is None or op.lower() in WORDS:
            return Test(name, "set", (), negate)
        self.i += 1
        if op.lower() == "not" and self.take("in"):
            negate, op = not negate, "in"
        op = op.lower() if op.lower() in ("in", "contains") else op
        if op == "in":
            if slot.type == "list":
                raise ValueError(f"{name!r} is a list slot: test it with 'contains'")
            return Test(name, "in", tuple(self.literal(slot) for _ in self.listed()), negate)
        if op == "contains":
            if slot.type != "list":
                raise ValueError(f"'contains' is for list slots; {name!r} is {slot.type}")
            return Test(name, op, (self.literal(slot, item=True),), negate)
        if op not in COMPARE:
            raise ValueError(f"expected an operator ({', '.join(COMPARE)}, in, contains) after {name!r}, got {op!r}")
        if slot.type == "list":
            raise ValueError(f"{name!r} is a list slot: test it with 'contains'")
        if op in ORDERING and slot.type != "number":
            raise ValueError(f"{op!r} compares numbers; {name!r} is {slot.type}")
        return Test(name, op, (self.literal(slot),), negate)

    def listed(self):
        if not self.take("["):
            raise ValueError("'in' takes a list: [a, b]")
        while True:
            yield
            if self.take("]"):
                return
            if not self.take(","):
                raise ValueError("expected ',' or ']' in the list")

    def literal(self, slot: Slot, item: bool = False) -> Value:
        words = []
        while self.peek() is not None and self.peek() not in (",", "]") and self.peek().lower() not in WORDS:  # type: ignore[union-attr]
            words.append(self.tokens[self.i])
            self.i += 1
        if not words:
            raise ValueError(f"a value is missing for slot {slot.name!r}")
        raw = " ".join(w[1:-1] if w[0] in "'\"" else w for w in words)
        value, why = coerce(slot, raw)
        if why:
            raise ValueError(f"slot {slot.name!r} can never be {raw!r}: {why}")
        return value[0] if item and isinstance(value, tuple) else value  # type: ignore[return-value]
