"""The dialogue step: which response a turn gets, from the bot definition alone.

Shared by the conversation actor (live turns) and replay (what a snapshot would have
answered), so both pick the same words for the same intent, entities and turn number.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

from botyard.models.definition import BotDefinition

PLACEHOLDER_RE = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)\}")


def respond(definition: BotDefinition, intent: str, fallback: bool, number: int, entities: Iterable[Mapping]) -> str:
    """The reply to turn ``number``: the fallback response, or one of the intent's responses."""
    if fallback:
        return definition.fallback.response
    return fill(definition.intent(intent).responses, number, entities)


def fill(responses: tuple[str, ...], number: int, entities: Iterable[Mapping]) -> str:
    """Pick the most specific responses this turn can fill (the most ``{entity}`` placeholders,
    all of them found), rotate through those by turn number, and fill them in."""
    values = {e["entity"]: str(e["value"]) for e in entities}
    named = [(r, PLACEHOLDER_RE.findall(r)) for r in responses]
    usable = [(r, names) for r, names in named if all(n in values for n in names)] or named
    most = max(len(names) for _, names in usable)
    usable = [r for r, names in usable if len(names) == most]
    chosen = usable[(number - 1) % len(usable)]
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), chosen)
