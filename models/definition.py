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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from botyard.models.errors import DefinitionError, Problems
from botyard.models.examples import Examples, normal, plain, strings
from botyard.models.languages import LANGUAGES as BOT_LANGUAGES
from botyard.models.names import IDENTIFIER_RE, did_you_mean, identifier_problem, token_problem
from botyard.models.overlap import overlaps
from botyard.models.system.kinds import KINDS as SYSTEM_KINDS
from botyard.models.system.languages import DEFAULT as DEFAULT_LANGUAGE
from botyard.models.system.languages import LANGUAGES
from botyard.models.text import ANNOTATION_RE
from botyard.protocol import NAME_RE  # tenant and bot names are NATS subject tokens

INTENT_RE = IDENTIFIER_RE
"""Intent and entity names (and slot names, :mod:`botyard.dialogue.slots`)."""
MIN_EXAMPLES = 1
"""Fewest examples an intent may have (one is accepted with a warning)."""
OUT_OF_SCOPE = "out_of_scope"
"""The reserved label of the ``out_of_scope`` examples; predicting it means "I don't know"."""
TOP_LEVEL_KEYS = {
    "tenant", "bot", "description", "language", "timezone", "fallback", "entities", "intents", "out_of_scope", "dialogue",
}
INTENT_KEYS = {"examples", "responses"}
ENTITY_TYPES = ("learned", "list", "regex", "system")
DEFAULT_TIMEZONE = "UTC"


@dataclass(frozen=True, slots=True)
class Intent:
    name: str
    examples: tuple[str, ...]
    responses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Entity:
    name: str
    type: str
    """``learned`` (tagged by the model), ``list`` (values and synonyms), ``regex`` or ``system``
    (numbers, money, dates, ...: :mod:`botyard.models.system`)."""
    values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """List entities: ``(canonical value, synonyms)`` pairs."""
    pattern: str = ""
    """Regex entities: a Python regular expression."""
    kind: str = ""
    """System entities: ``number``, ``ordinal``, ``money``, ``date``, ``time`` or ``duration``."""


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
    warnings: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
    """``(field, warning)`` for what :func:`parse_bot` accepted but the tenant should look at
    (duplicates it dropped, one-example intents, intents that overlap). Not part of the
    definition: not in :meth:`to_dict`, the content hash or equality."""
    language: str = DEFAULT_LANGUAGE
    """The language the bot's users write (``en``, ``ko``: :mod:`botyard.models.languages`): what
    its model and its system entities read."""
    timezone: str = DEFAULT_TIMEZONE
    """The IANA time zone relative dates and times resolve in (``tomorrow``, ``in two hours``)."""

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
        del out["warnings"]
        if self.dialogue is None:
            del out["dialogue"]  # bots without one keep their content hash
        for entity in out["entities"]:
            if not entity["kind"]:
                del entity["kind"]  # ... and so do bots without system entities,
        for key, default in (("language", DEFAULT_LANGUAGE), ("timezone", DEFAULT_TIMEZONE)):
            if out[key] == default:
                del out[key]  # ... a language or a time zone
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
                moved[normal(text)] = (text, intent)
        if not moved:
            return self

        def keep(examples: tuple[str, ...]) -> list[str]:
            return [e for e in examples if normal(e) not in moved]

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
                Entity(e["name"], e["type"], tuple((v, tuple(syn)) for v, syn in e.get("values", ())), e.get("pattern", ""),
                       e.get("kind", ""))
                for e in data.get("entities", ())
            ),
            out_of_scope=tuple(data.get("out_of_scope", ())),
            dialogue=data.get("dialogue"),
            language=data.get("language", DEFAULT_LANGUAGE),
            timezone=data.get("timezone", DEFAULT_TIMEZONE),
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
    """Validate a parsed mapping: one :class:`DefinitionError` lists every problem, each naming
    its field. What is accepted but deserves a look is in the definition's ``warnings``."""
    definition, problems = inspect_bot(data, source=source)
    problems.check()
    assert definition is not None  # None comes with an error
    return definition


def inspect_bot(data: Any, *, source: str = "<bot>") -> tuple[BotDefinition | None, Problems]:
    """Every error and warning of a parsed mapping, and the definition as far as it could be read
    (None when the top level is not a mapping; bad examples left out, bad intents and entities
    kept by name). ``botyard check`` validates the dialogue section against it, so that one run
    reports the problems of both.

    Refused: what has no one right reading (the same utterance under two intents, a bad name, a
    bad regex, ...). Warned about and accepted: an example repeated within its intent (the
    repeat is dropped), an intent with one example, intents whose examples overlap heavily
    (:mod:`botyard.models.overlap`)."""
    p = Problems(source)
    if not isinstance(data, dict):
        p.add("(top level)", "must be a mapping with keys tenant, bot, intents")
        return None, p
    for key in sorted(set(data) - TOP_LEVEL_KEYS, key=str):
        p.add(str(key), f"unknown key; expected one of {sorted(TOP_LEVEL_KEYS)}{did_you_mean(key, TOP_LEVEL_KEYS)}")
    for key in ("tenant", "bot"):
        if not isinstance(data.get(key), str) or not NAME_RE.match(data[key]):
            p.add(key, token_problem(data.get(key)))
    description = data.get("description", "")
    if not isinstance(description, str):
        p.add("description", "must be a string")
    fallback = _parse_fallback(data.get("fallback", {}), p)
    language, timezone = DEFAULT_LANGUAGE, DEFAULT_TIMEZONE
    with p.collect():
        language, timezone = _parse_locale(data, p.fail)
    raw_entities = data.get("entities", {})
    entities = _entities(raw_entities, p)
    for e in entities:
        if e.type == "system" and language not in LANGUAGES:  # the languages system entities read
            p.add(f"entities.{e.name}", f"system entities read {', '.join(sorted(LANGUAGES))} only so far, not {language!r}")
    declared = {e.name for e in entities} | ({str(k) for k in raw_entities} if isinstance(raw_entities, dict) else set())
    raw_intents = data.get("intents")
    if not isinstance(raw_intents, dict) or len(raw_intents) < 2:
        p.add("intents", "required: a mapping of at least 2 intents")
    raw_intents = raw_intents if isinstance(raw_intents, dict) else {}
    examples = Examples(declared, p)
    names = {str(n) for n in raw_intents}
    intents = [_intent(n, body, examples, names, p) for n, body in raw_intents.items()]
    out_of_scope = examples.read(data.get("out_of_scope"), OUT_OF_SCOPE, OUT_OF_SCOPE, annotated=False)
    dialogue = data.get("dialogue")
    if dialogue is not None:
        errors = len(p.errors)
        if not isinstance(dialogue, dict):
            p.add("dialogue", "must be a mapping (slots, forms, rules, ...)")
        else:
            _check_plain(dialogue, "dialogue", p)
        dialogue = json.loads(json.dumps(dialogue)) if len(p.errors) == errors else None  # a copy of its own
    groups = [(i.name, f"intents.{i.name}", [plain(e) for e in i.examples]) for i in intents]
    p.warnings += overlaps(groups + ([(OUT_OF_SCOPE, OUT_OF_SCOPE, out_of_scope)] if out_of_scope else []))
    definition = BotDefinition(
        str(data.get("tenant")), str(data.get("bot")), tuple(intents), fallback,
        description if isinstance(description, str) else "", tuple(entities), tuple(out_of_scope), dialogue,
        tuple(p.warnings), language=language, timezone=timezone,
    )
    return definition, p


def _intent(name: Any, body: Any, examples: Examples, names: set[str], p: Problems) -> Intent:
    where = f"intents.{name}"
    if not isinstance(name, str) or not INTENT_RE.match(name):
        p.add(where, identifier_problem(name, "intent", names))
    elif name == OUT_OF_SCOPE:
        p.add(where, f"'{OUT_OF_SCOPE}' is reserved: list those examples under the top-level 'out_of_scope' key")
    if not isinstance(body, dict):
        p.add(where, "must be a mapping with 'examples' and 'responses'")
        return Intent(str(name), (), ())
    for key in sorted(set(body) - INTENT_KEYS, key=str):
        p.add(f"{where}.{key}", f"unknown key; expected one of {sorted(INTENT_KEYS)}{did_you_mean(key, INTENT_KEYS)}")
    errors = len(p.errors)
    kept = examples.read(body.get("examples"), f"{where}.examples", str(name))
    if body.get("examples") in (None, []):
        p.add(f"{where}.examples", f"needs at least {MIN_EXAMPLES} example")
    elif len(kept) == 1 and len(p.errors) == errors:  # (not when its other examples are refused)
        p.warn(f"{where}.examples", "only 1 example: the model will rarely recognise other ways of saying it; "
               "add more (with 5 or more, training also holds some out to test it)")
    responses = [text for _, text in strings(body.get("responses"), f"{where}.responses", p)]
    if body.get("responses") in (None, []):
        p.add(f"{where}.responses", "needs at least one response")
    return Intent(str(name), tuple(kept), tuple(responses))


def _entities(raw: Any, p: Problems) -> list[Entity]:
    """The entities that parse, then a ``learned`` stand-in for each that does not (the
    definition is refused then: the stand-ins keep its names known to the checks that follow).
    Every entity's first problem joins ``p``: a bad one is set aside and the rest parsed again."""
    if not isinstance(raw, dict):
        with p.collect():
            _parse_entities(raw, p.fail)
        return []
    remaining, bad = {}, []
    for name, body in raw.items():
        if isinstance(name, str) and INTENT_RE.match(name):
            remaining[name] = body
        else:
            p.add(f"entities.{name}", identifier_problem(name, "entity", {str(k) for k in raw}))
            bad.append(str(name))
    while True:
        try:
            return _parse_entities(remaining, p.fail) + [Entity(name, "learned") for name in bad]
        except DefinitionError as exc:
            p.errors.extend(exc.problems)
            failed = next((k for k in remaining if exc.field == f"entities.{k}" or exc.field.startswith(f"entities.{k}.")), None)
            if failed is None:
                return [Entity(name, "learned") for name in [*bad, *remaining]]
            del remaining[failed]
            bad.append(failed)


def _check_plain(value: Any, where: str, p: Problems) -> None:
    """JSON-safe data only (it is stored in snapshots and hashed): string keys, no dates or sets."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                hint = " (YAML reads a bare yes, no, on or off as true/false)" if isinstance(key, bool) else ""
                p.add(f"{where}.{key}", f"keys must be strings: quote them{hint}")
            else:
                _check_plain(item, f"{where}.{key}", p)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]", p)
    elif not (value is None or isinstance(value, (str, int, float, bool))):
        p.add(where, f"must be plain YAML (strings, numbers, true/false, lists, mappings), got {type(value).__name__}")


def _parse_locale(data: Mapping[str, Any], fail) -> tuple[str, str]:
    """The bot's ``language`` and ``timezone`` (what its system entities read and resolve in)."""
    language = data.get("language", DEFAULT_LANGUAGE)
    if language not in BOT_LANGUAGES:
        raise fail("language", f"must be one of {sorted(BOT_LANGUAGES)}, got {language!r}")
    timezone = data.get("timezone", DEFAULT_TIMEZONE)
    try:
        ZoneInfo(timezone)
    except (ValueError, TypeError, ZoneInfoNotFoundError):
        raise fail("timezone", f"unknown time zone {timezone!r}: give an IANA name like Europe/Brussels or UTC") from None
    return language, timezone


def _parse_entities(raw: Any, fail) -> list[Entity]:
    if not isinstance(raw, dict):
        raise fail("entities", "must be a mapping of entity name to its definition")
    out = []
    system: dict[str, str] = {}  # kind -> the entity of that kind
    for name, body in raw.items():
        where = f"entities.{name}"
        if not isinstance(name, str) or not INTENT_RE.match(name):
            raise fail(where, "entity names are identifiers: a letter, then letters, digits or '_'")
        if isinstance(body, str):
            body = {"type": body}
        if not isinstance(body, dict) or body.get("type") not in ENTITY_TYPES:
            raise fail(f"{where}.type", f"must be one of {list(ENTITY_TYPES)}")
        kind = body["type"]
        allowed = {"type"} | {"list": {"values"}, "regex": {"pattern"}, "learned": set(), "system": {"kind"}}[kind]
        extra = sorted(set(body) - allowed)
        if extra:
            raise fail(f"{where}.{extra[0]}", f"unknown key for a {kind} entity; expected one of {sorted(allowed)}")
        if kind == "learned":
            out.append(Entity(name, kind))
        elif kind == "system":
            of = body.get("kind")
            if of not in SYSTEM_KINDS:
                raise fail(f"{where}.kind", f"must be one of {list(SYSTEM_KINDS)}, got {of!r}")
            if of in system:
                raise fail(f"{where}.kind", f"entity '{system[of]}' is already the {of} entity: declare each kind once "
                           "(several slots can fill from it)")
            system[of] = name
            out.append(Entity(name, kind, kind=of))
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


def _parse_fallback(raw: Any, p: Problems) -> Fallback:
    default = Fallback()
    if not isinstance(raw, dict):
        p.add("fallback", "must be a mapping with 'threshold' and 'response'")
        return default
    for key in sorted(set(raw) - {"threshold", "response"}, key=str):
        p.add(f"fallback.{key}", "unknown key; expected threshold or response")
    threshold = raw.get("threshold", default.threshold)
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0
    ):
        p.add("fallback.threshold", f"must be a number between 0 and 1, got {threshold!r}")
        threshold = None
    response = raw.get("response", default.response)
    if not isinstance(response, str) or not response.strip():
        p.add("fallback.response", "must be a non-empty string")
        response = default.response
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
