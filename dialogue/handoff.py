"""Human handoff and fallback escalation.

```yaml
dialogue:
  handoff:
    intents: [talk_to_human]         # these intents hand the conversation to a person
    message: "Handing you over."     # optional: said instead of the intent's own response
    back: "You're back with the bot."
  escalation:                        # this many fallbacks in a row...
    after: 2
    response: "I'm not getting it, sorry. Let me find a colleague."
    handoff: true                    # ...and then hand off (default: only say the response)
```

While handed off the bot says nothing: the node publishes the user's turns for an agent, who
answers them and hands back (:func:`botyard.dialogue.engine.hand_back`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botyard.dialogue.errors import Problems


@dataclass(frozen=True, slots=True)
class Escalation:
    response: str
    after: int = 2
    handoff: bool = False


@dataclass(frozen=True, slots=True)
class Handoff:
    intents: tuple[str, ...] = ()
    message: str = ""
    """Said when an intent hands off, instead of the intent's own response."""
    back: str = "You're back with the bot. How can I help?"


def parse_escalation(raw: Any, p: Problems) -> Escalation | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"after", "response", "handoff"}:
        p.add("dialogue.escalation", "must be a mapping with 'response', 'after' and 'handoff'")
        return None
    after, response, handoff = raw.get("after", 2), raw.get("response"), raw.get("handoff", False)
    if isinstance(after, bool) or not isinstance(after, int) or after < 1:
        p.add("dialogue.escalation.after", f"must be a whole number of at least 1, got {after!r}")
        after = 2
    if not isinstance(response, str) or not response.strip():
        p.add("dialogue.escalation.response", "required: what the bot says when it escalates")
        response = ""
    if not isinstance(handoff, bool):
        p.add("dialogue.escalation.handoff", "must be true or false")
    return Escalation(response, after, handoff is True)


def parse_handoff(raw: Any, intents: set[str], p: Problems) -> Handoff:
    if raw is None:
        return Handoff()
    if not isinstance(raw, dict) or set(raw) - {"intents", "message", "back"}:
        p.add("dialogue.handoff", "must be a mapping with 'intents', 'message' and 'back'")
        return Handoff()
    names = raw.get("intents", [])
    if not isinstance(names, list):
        p.add("dialogue.handoff.intents", "must be a list of intent names")
        names = []
    for i, name in enumerate(names):
        if name not in intents:
            p.add(f"dialogue.handoff.intents[{i}]", f"intent {name!r} is not defined under 'intents'")
    texts = {k: raw.get(k, getattr(Handoff(), k)) for k in ("message", "back")}
    for key, text in texts.items():
        if not isinstance(text, str):
            p.add(f"dialogue.handoff.{key}", "must be a string")
            texts[key] = getattr(Handoff(), key)
    return Handoff(tuple(n for n in names if isinstance(n, str)), **texts)
