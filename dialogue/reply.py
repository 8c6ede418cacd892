"""The words of a reply: placeholders ``{name}`` filled from slots and the turn's entities,
conditional responses chosen by slot values."""

from __future__ import annotations

from typing import Iterable, Mapping

from botyard.dialogue.conditions import holds
from botyard.dialogue.responses import PLACEHOLDER_RE, fill
from botyard.dialogue.slots import Value, format_value


def values(slots: Mapping[str, Value], entities: Iterable[Mapping]) -> dict[str, str]:
    """What placeholders read: the turn's entities, and the slots over them."""
    out = {e["entity"]: str(e["value"]) for e in entities}
    out.update({name: format_value(v) for name, v in slots.items()})
    return out


def render(text: str, known: Mapping[str, str]) -> str:
    """``text`` with its placeholders filled; one naming nothing known is left as written."""
    return PLACEHOLDER_RE.sub(lambda m: known.get(m.group(1), m.group(0)), text)


def respond(intent_responses: tuple[str, ...], conditional, number: int, slots: Mapping[str, Value],
            entities: Iterable[Mapping]) -> str:
    """The reply for an intent: its conditional responses whose condition holds, else its own
    responses; then as :func:`botyard.dialogue.responses.fill` picks (most placeholders it
    can fill, rotated by turn number), so a bot without slots answers exactly as before."""
    pool = tuple(r.text for r in conditional if holds(r.when, slots)) or intent_responses
    return fill(pool, number, [{"entity": k, "value": v} for k, v in values(slots, entities).items()])
