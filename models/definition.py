r"""Bot definitions: one YAML file per bot, validated into frozen dataclasses.

```yaml
tenant: acme-shop
bot: support
fallback: {response: "Sorry, I didn't get that."}   # threshold: calibrated unless given
entities:
  order_id: learned                       # tagged inline: [A-1234](order_id)
  product: {type: list, values: {tent: [tents, shelter]}}
  phone: {type: regex, pattern: '\+?\d[\d -]{7,}\d'}
intents:
  greeting:
    examples: [hi, hello there]
    responses: ["Hello! How can I help?"]
  order_status:
    examples: ["where is order [A-1234](order_id)", "status of [B-77](order_id)"]
    responses: ["Let me look up {order_id}."]
out_of_scope: [what's the weather like, tell me a joke]
dialogue: {}    # optional: slots, forms, rules, handoff (validated by botyard.dialogue.spec)
```
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from botyard.models.errors import DefinitionError
from botyard.models.text import ANNOTATION_RE, parse_annotated
from botyard.protocol import NAME_RE  # tenant and bot names are NATS subject tokens

INTENT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
MIN_EXAMPLES = 2
OUT_OF_SCOPE = "out_of_scope"
"""The reserved label of the ``out_of_scope`` examples; predicting it means "I don't know"."""
TOP_LEVEL_KEYS = {"tenant", "bot", "description", "fallback", "entities", "intents", "out_of_scope", "dialogue"}
INTENT_KEYS = {"examples", "responses"}
ENTITY_TYPES = ("learned", "list", "regex")


@dataclass(frozen=True, slots=True)
class Intent:
    name: str
    examples: tuple[str, ...]
    responses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Entity:
    name: str
    type: str
    """``learned`` (tagged by the model), ``list`` (values and synonyms) or ``regex``."""
    values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """List entities: ``(canonical value, synonyms)`` pairs."""
    pattern: str = ""
    """Regex entities: a Python regular expression."""


@dataclass(frozen=True, slots=True)
class Fallback:
    threshold: float | None = None
    """Below this confidence the bot answers with ``response`` instead of guessing;
    ``None``: the threshold calibrated on validation data at training time."""
    response: str = "Sorry, I didn't understand that."


@dataclass(frozen=True, slots=True)
class BotDefinition:
    tenant: str
    bot: str
    intents: tuple[Intent, ...]
    fallback: Fallback = Fallback()
    description: str = ""
    entities: tuple[Entity, ...] = ()
    out_of_scope: tuple[str, ...] = ()
    """Examples of what the bot must not answer; trained as the ``out_of_scope`` label."""
    dialogue: Mapping[str, Any] | None = field(default=None, hash=False)
    """The optional ``dialogue`` section as written (plain JSON-safe data, read-only), or ``None``.
    Its meaning and validation live in :mod:`botyard.dialogue.spec`, a layer above this one."""

    @property
    def key(self) -> str:
        return f"{self.tenant}/{self.bot}"

    def intent(self, name: str) -> Intent:
        for intent in self.intents:
            if intent.name == name:
                return intent
        raise KeyError(name)

    def entity(self, name: str) -> Entity:
        for entity in self.entities:
            if entity.name == name:
                return entity
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.dialogue is None:
            del out["dialogue"]  # bots without one keep their content hash
        return out

    def with_examples(self, labelled: Iterable[tuple[str, str]]) -> "BotDefinition":
        """This definition plus ``(text, intent)`` examples (``out_of_scope`` allowed); a text
        already an example of another intent moves to the new one. Texts that look like entity
        annotations are skipped (they would be read as markup)."""
        moved: dict[str, tuple[str, str]] = {}
        for text, intent in labelled:
            if intent != OUT_OF_SCOPE:
                self.intent(intent)  # KeyError for an intent the bot does not have
            if text.strip() and not ANNOTATION_RE.search(text):
                moved[_normal(text)] = (text, intent)
        if not moved:
            return self

        def keep(examples: tuple[str, ...]) -> list[str]:
            return [e for e in examples if _normal(e) not in moved]

        added: dict[str, list[str]] = {}
        for text, intent in moved.values():
            added.setdefault(intent, []).append(text)
        intents = tuple(replace(i, examples=(*keep(i.examples), *added.get(i.name, ()))) for i in self.intents)
        out_of_scope = (*keep(self.out_of_scope), *added.get(OUT_OF_SCOPE, ()))
        return replace(self, intents=intents, out_of_scope=out_of_scope)

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
            entities=tuple(
                Entity(e["name"], e["type"], tuple((v, tuple(syn)) for v, syn in e.get("values", ())), e.get("pattern", ""))
                for e in data.get("entities", ())
            ),
            out_of_scope=tuple(data.get("out_of_scope", ())),
            dialogue=data.get("dialogue"),
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
    entities = _parse_entities(data.get("entities", {}), fail)
    defined = {e.name for e in entities}
    raw_intents = data.get("intents")
    if not isinstance(raw_intents, dict) or len(raw_intents) < 2:
        raise fail("intents", "required: a mapping of at least 2 intents")

    intents = []
    seen: dict[str, str] = {}
    for name, body in raw_intents.items():
        where = f"intents.{name}"
        if not isinstance(name, str) or not INTENT_RE.match(name):
            raise fail(where, "intent names are identifiers: a letter, then letters, digits or '_'")
        if name == OUT_OF_SCOPE:
            raise fail(where, f"'{OUT_OF_SCOPE}' is reserved: list those examples under the top-level 'out_of_scope' key")
        if not isinstance(body, dict):
            raise fail(where, "must be a mapping with 'examples' and 'responses'")
        extra = sorted(set(body) - INTENT_KEYS)
        if extra:
            raise fail(f"{where}.{extra[0]}", f"unknown key; expected one of {sorted(INTENT_KEYS)}")
        examples = _string_list(body.get("examples"), f"{where}.examples", fail)
        if len(examples) < MIN_EXAMPLES:
            raise fail(f"{where}.examples", f"needs at least {MIN_EXAMPLES} examples, has {len(examples)}")
        for i, example in enumerate(examples):
            _check_annotations(example, defined, f"{where}.examples[{i}]", fail)
            norm = _normal(example)
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
    out_of_scope = _string_list(data.get("out_of_scope"), OUT_OF_SCOPE, fail)
    for i, example in enumerate(out_of_scope):
        if ANNOTATION_RE.search(example):
            raise fail(f"{OUT_OF_SCOPE}[{i}]", "out-of-scope examples carry no entity annotations")
        if _normal(example) in seen:
            raise fail(f"{OUT_OF_SCOPE}[{i}]", f"{example!r} is also an example of intent '{seen[_normal(example)]}'")
        seen[_normal(example)] = OUT_OF_SCOPE
    dialogue = data.get("dialogue")
    if dialogue is not None:
        if not isinstance(dialogue, dict):
            raise fail("dialogue", "must be a mapping (slots, forms, rules, ...)")
        _check_plain(dialogue, "dialogue", fail)
        dialogue = json.loads(json.dumps(dialogue))  # a copy of its own
    return BotDefinition(
        data["tenant"], data["bot"], tuple(intents), fallback, description, tuple(entities), tuple(out_of_scope), dialogue
    )


def _check_plain(value: Any, where: str, fail) -> None:
    """JSON-safe data only (it is stored in snapshots and hashed): string keys, no dates or sets."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                hint = " (YAML reads a bare yes, no, on or off as true/false)" if isinstance(key, bool) else ""
                raise fail(f"{where}.{key}", f"keys must be strings: quote them{hint}")
            _check_plain(item, f"{where}.{key}", fail)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]", fail)
    elif not (value is None or isinstance(value, (str, int, float, bool))):
        raise fail(where, f"must be plain YAML (strings, numbers, true/false, lists, mappings), got {type(value).__name__}")


def _normal(example: str) -> str:
    return " ".join(parse_annotated(example)[0].lower().split())


def _check_annotations(example: str, defined: set[str], field: str, fail) -> None:
    for m in ANNOTATION_RE.finditer(example):
        if m.group(2) not in defined:
            raise fail(field, f"entity '{m.group(2)}' is used but not defined under 'entities'")
    plain = ANNOTATION_RE.sub("", example)
    if "](" in plain or "[" in plain and "]" in plain:
        raise fail(field, "malformed entity annotation; write [text](entity_name)")


def _parse_entities(raw: Any, fail) -> list[Entity]:
    if not isinstance(raw, dict):
        raise fail("entities", "must be a mapping of entity name to its definition")
    out = []
    for name, body in raw.items():
        where = f"entities.{name}"
        if not isinstance(name, str) or not INTENT_RE.match(name):
            raise fail(where, "entity names are identifiers: a letter, then letters, digits or '_'")
        if isinstance(body, str):
            body = {"type": body}
        if not isinstance(body, dict) or body.get("type") not in ENTITY_TYPES:
            raise fail(f"{where}.type", f"must be one of {list(ENTITY_TYPES)}")
        kind = body["type"]
        allowed = {"type"} | {"list": {"values"}, "regex": {"pattern"}, "learned": set()}[kind]
        extra = sorted(set(body) - allowed)
        if extra:
            raise fail(f"{where}.{extra[0]}", f"unknown key for a {kind} entity; expected one of {sorted(allowed)}")
        if kind == "learned":
            out.append(Entity(name, kind))
        elif kind == "regex":
            pattern = body.get("pattern")
            if not isinstance(pattern, str) or not pattern:
                raise fail(f"{where}.pattern", "required: a regular expression")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise fail(f"{where}.pattern", f"does not compile: {exc}") from None
            if compiled.match(""):
                raise fail(f"{where}.pattern", "matches the empty string")
            out.append(Entity(name, kind, pattern=pattern))
        else:
            values = body.get("values")
            if isinstance(values, list):  # values without synonyms
                values = {v: [] for v in values} if all(isinstance(v, str) for v in values) else None
            if not isinstance(values, dict) or not values:
                raise fail(f"{where}.values", "required: a mapping of value to a list of synonyms (or a list of values)")
            pairs = []
            for value, synonyms in values.items():
                if not isinstance(value, str) or not value.strip():
                    raise fail(f"{where}.values", f"values must be non-empty strings, got {value!r}")
                pairs.append((value.strip(), tuple(_string_list(synonyms, f"{where}.values.{value}", fail))))
            out.append(Entity(name, kind, values=tuple(pairs)))
    return out


def _parse_fallback(raw: Any, fail) -> Fallback:
    if not isinstance(raw, dict):
        raise fail("fallback", "must be a mapping with 'threshold' and 'response'")
    extra = sorted(set(raw) - {"threshold", "response"})
    if extra:
        raise fail(f"fallback.{extra[0]}", "unknown key; expected threshold or response")
    default = Fallback()
    threshold = raw.get("threshold", default.threshold)
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0
    ):
        raise fail("fallback.threshold", f"must be a number between 0 and 1, got {threshold!r}")
    response = raw.get("response", default.response)
    if not isinstance(response, str) or not response.strip():
        raise fail("fallback.response", "must be a non-empty string")
    return Fallback(None if threshold is None else float(threshold), response)


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
