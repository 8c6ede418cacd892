"""Bot definitions: one YAML file per bot, validated into frozen dataclasses.

```yaml
tenant: acme-shop
bot: support
fallback: {threshold: 0.45, response: "Sorry, I didn't get that."}
intents:
  greeting:
    examples: [hi, hello there]
    responses: ["Hello! How can I help?"]
```
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from botyard.models.errors import DefinitionError

from botyard.protocol import NAME_RE  # tenant and bot names are NATS subject tokens

INTENT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
MIN_EXAMPLES = 2
TOP_LEVEL_KEYS = {"tenant", "bot", "description", "fallback", "intents"}
INTENT_KEYS = {"examples", "responses"}


@dataclass(frozen=True, slots=True)
class Intent:
    name: str
    examples: tuple[str, ...]
    responses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Fallback:
    threshold: float = 0.5
    """Below this confidence the bot answers with ``response`` instead of guessing."""
    response: str = "Sorry, I didn't understand that."


@dataclass(frozen=True, slots=True)
class BotDefinition:
    tenant: str
    bot: str
    intents: tuple[Intent, ...]
    fallback: Fallback = Fallback()
    description: str = ""

    @property
    def key(self) -> str:
        return f"{self.tenant}/{self.bot}"

    def intent(self, name: str) -> Intent:
        for intent in self.intents:
            if intent.name == name:
                return intent
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def content_hash(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BotDefinition":
        """Rebuild from :meth:`to_dict` output (as stored in a snapshot)."""
        return cls(
            tenant=data["tenant"],
            bot=data["bot"],
            description=data.get("description", ""),
            fallback=Fallback(**data["fallback"]),
            intents=tuple(
                Intent(i["name"], tuple(i["examples"]), tuple(i["responses"])) for i in data["intents"]
            ),
        )


def load_bot(path: str | Path) -> BotDefinition:
    """Read and validate one bot file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(str(path), "(file)", f"cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DefinitionError(str(path), "(file)", f"not valid YAML: {exc}") from None
    return parse_bot(data, source=str(path))


def parse_bot(data: Any, *, source: str = "<bot>") -> BotDefinition:
    """Validate a parsed mapping; every problem names the field."""

    def fail(field: str, problem: str) -> DefinitionError:
        return DefinitionError(source, field, problem)

    if not isinstance(data, dict):
        raise fail("(top level)", "must be a mapping with keys tenant, bot, intents")
    unknown = sorted(set(data) - TOP_LEVEL_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key; expected one of {sorted(TOP_LEVEL_KEYS)}")
    for key in ("tenant", "bot"):
        value = data.get(key)
        if not isinstance(value, str) or not NAME_RE.match(value):
            raise fail(key, "required: 1-64 letters, digits, '-' or '_', starting with a letter or digit")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("description", "must be a string")

    fallback = _parse_fallback(data.get("fallback", {}), fail)
    raw_intents = data.get("intents")
    if not isinstance(raw_intents, dict) or len(raw_intents) < 2:
        raise fail("intents", "required: a mapping of at least 2 intents")

    intents = []
    seen: dict[str, str] = {}
    for name, body in raw_intents.items():
        where = f"intents.{name}"
        if not isinstance(name, str) or not INTENT_RE.match(name):
            raise fail(where, "intent names are identifiers: a letter, then letters, digits or '_'")
        if not isinstance(body, dict):
            raise fail(where, "must be a mapping with 'examples' and 'responses'")
        extra = sorted(set(body) - INTENT_KEYS)
        if extra:
            raise fail(f"{where}.{extra[0]}", f"unknown key; expected one of {sorted(INTENT_KEYS)}")
        examples = _string_list(body.get("examples"), f"{where}.examples", fail)
        if len(examples) < MIN_EXAMPLES:
            raise fail(f"{where}.examples", f"needs at least {MIN_EXAMPLES} examples, has {len(examples)}")
        for i, example in enumerate(examples):
            norm = " ".join(example.lower().split())
            if norm in seen:
                other = seen[norm]
                raise fail(
                    f"{where}.examples[{i}]",
                    f"{example!r} is also an example of intent '{other}'" if other != name else f"duplicate example {example!r}",
                )
            seen[norm] = name
        responses = _string_list(body.get("responses"), f"{where}.responses", fail)
        if not responses:
            raise fail(f"{where}.responses", "needs at least one response")
        intents.append(Intent(name, tuple(examples), tuple(responses)))
    return BotDefinition(data["tenant"], data["bot"], tuple(intents), fallback, description)


def _parse_fallback(raw: Any, fail) -> Fallback:
    if not isinstance(raw, dict):
        raise fail("fallback", "must be a mapping with 'threshold' and 'response'")
    extra = sorted(set(raw) - {"threshold", "response"})
    if extra:
        raise fail(f"fallback.{extra[0]}", "unknown key; expected threshold or response")
    default = Fallback()
    threshold = raw.get("threshold", default.threshold)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise fail("fallback.threshold", f"must be a number between 0 and 1, got {threshold!r}")
    response = raw.get("response", default.response)
    if not isinstance(response, str) or not response.strip():
        raise fail("fallback.response", "must be a non-empty string")
    return Fallback(float(threshold), response)


def _string_list(raw: Any, field: str, fail) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise fail(field, "must be a list of strings")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not item.strip():
            raise fail(f"{field}[{i}]", f"must be a non-empty string, got {item!r}")
        out.append(item.strip())
    return out
