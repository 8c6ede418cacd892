r"""The dialogue part of a bot: the optional ``dialogue`` section of its YAML file.

A bot without one behaves exactly as before (:mod:`botyard.dialogue.responses`). Slots are
described in :mod:`~botyard.dialogue.slots`, conditions in :mod:`~botyard.dialogue.conditions`,
the built-in cancel/affirm/deny in :mod:`~botyard.dialogue.builtins`.

```yaml
dialogue:
  slots:
    order_number: {entity: order_number, regex: '\d{7}', questions: ["What's your order number?"]}
    item: {type: categorical, values: [tent, hiking boots], entity: product, questions: ["Which item?"]}
    reason: {from_text: true, fill: asked, questions: ["Why are you returning it?"]}
    delivery_country: {type: categorical, values: [Belgium, Germany], entity: country}
  forms:
    returns:                        # an intent of the bot: it needs these slots, asked in order
      slots: [order_number, item, reason]
      confirm: "Return the {item} from order {order_number}, is that right?"   # optional
      give_up: "Sorry, I can't get that. You can also start a return in 'My account'."
      denied: "OK, I won't register the return."
      keep_slots: false             # default: the form's slots are cleared when it ends
  responses:                        # tried before the intent's own responses
    shipping_costs:
      - {when: delivery_country == Belgium, text: "Shipping to Belgium is free over 30 EUR."}
  rules:                            # on an intent (when the condition holds): set and clear slots
    - {intent: greeting, clear: [order_number]}
  escalation: {after: 2, response: "Let me find a colleague for you.", handoff: true}
  handoff: {intents: [talk_to_human], back: "You're back with the bot."}
  digression_confidence: 0.8        # an answer is read as another intent only above this
  messages: {cancelled: "OK, I've stopped that."}   # see Messages
```

Placeholders ``{name}`` in any text name an entity or a slot. :func:`parse_dialogue`
reports every problem of the section at once (:class:`~botyard.dialogue.errors.DialogueDefinitionError`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, fields, replace
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any, Mapping

from botyard.dialogue.actions import Action, parse_actions
from botyard.dialogue.builtins import Builtins, parse_builtins
from botyard.dialogue.errors import Problems
from botyard.dialogue.handoff import Escalation, Handoff, parse_escalation, parse_handoff
from botyard.dialogue.responses import PLACEHOLDER_RE
from botyard.dialogue.rules import ConditionalResponse, Rule, parse_responses, parse_rules
from botyard.dialogue.slots import Slot, parse_slots
from botyard.models.definition import BotDefinition, load_bot, parse_bot

KEYS = {"actions", "slots", "forms", "responses", "rules", "escalation", "handoff", "builtins", "messages", "digression_confidence"}
FORM_KEYS = {"slots", "confirm", "give_up", "denied", "keep_slots", "action"}


@dataclass(frozen=True, slots=True)
class Form:
    intent: str
    slots: tuple[str, ...]
    confirm: str = ""
    give_up: str = ""
    denied: str = ""
    keep_slots: bool = False
    action: str = ""
    """Called when the form completes (:mod:`botyard.dialogue.actions`)."""


@dataclass(frozen=True, slots=True)
class Messages:
    cancelled: str = "OK, I've stopped that."
    denied: str = "OK, I won't do that."
    corrected: str = "OK, I've changed that."
    reask: str = "Sorry, that doesn't look right."
    give_up: str = "Sorry, I couldn't get that. Let's start over another time."
    confirm_again: str = "Please answer yes or no."


KOREAN_MESSAGES = Messages(
    cancelled="알겠습니다, 그만할게요.",
    denied="알겠습니다, 진행하지 않을게요.",
    corrected="네, 바꿨어요.",
    reask="죄송해요, 제가 이해하지 못했어요.",
    give_up="죄송해요, 확인하지 못했어요. 다음에 다시 말씀해 주세요.",
    confirm_again="네 또는 아니요로 답해 주세요.",
)
DEFAULT_MESSAGES = {"ko": KOREAN_MESSAGES}
"""The dialogue's own messages by bot language (English: :class:`Messages`' defaults)."""


@dataclass(frozen=True, slots=True)
class DialogueSpec:
    slots: tuple[Slot, ...] = ()
    forms: tuple[Form, ...] = ()
    responses: tuple[tuple[str, tuple[ConditionalResponse, ...]], ...] = ()
    rules: tuple[Rule, ...] = ()
    escalation: Escalation | None = None
    handoff: Handoff = Handoff()
    builtins: Builtins = Builtins()
    messages: Messages = Messages()
    digression_confidence: float = 0.8
    actions: tuple[Action, ...] = ()
    _index: dict = dataclass_field(default_factory=dict, compare=False, repr=False)
    """Slots and forms by name (filled in ``__post_init__``: every turn looks them up)."""

    def __post_init__(self) -> None:
        self._index.update({("slot", s.name): s for s in self.slots})
        self._index.update({("form", f.intent): f for f in self.forms})
        self._index.update({("action", a.name): a for a in self.actions})

    def action(self, name: str) -> Action | None:
        return self._index.get(("action", name))

    def actions_by_name(self) -> dict[str, Action]:
        return {a.name: a for a in self.actions}

    def slot(self, name: str) -> Slot:
        return self._index[("slot", name)]

    def form(self, intent: str | None) -> Form | None:
        return self._index.get(("form", intent))

    def conditional(self, intent: str) -> tuple[ConditionalResponse, ...]:
        return next((r for i, r in self.responses if i == intent), ())


_SPECS: "OrderedDict[int, tuple[BotDefinition, DialogueSpec]]" = OrderedDict()
_SPECS_KEPT = 1024
_SPECS_LOCK = threading.Lock()


def spec_of(definition: BotDefinition) -> DialogueSpec:
    """The definition's dialogue spec, parsed once per definition object (a loaded snapshot's
    definition is validated when it was trained; this is what every turn of it reads)."""
    key = id(definition)
    with _SPECS_LOCK:  # actors of several threads read it
        found = _SPECS.get(key)
        if found is not None and found[0] is definition:
            _SPECS.move_to_end(key)
            return found[1]
    spec = parse_dialogue(definition)
    with _SPECS_LOCK:
        _SPECS[key] = (definition, spec)  # the definition is kept, so its id is not reused while cached
        while len(_SPECS) > _SPECS_KEPT:
            _SPECS.popitem(last=False)
    return spec


def load(path: str | Path) -> tuple[BotDefinition, DialogueSpec]:
    """Read one bot file: its definition and its dialogue spec."""
    definition = load_bot(path)
    return definition, parse_dialogue(definition, source=str(path))


def parse_spec(data: Any, *, source: str = "<bot>") -> tuple[BotDefinition, DialogueSpec]:
    """A parsed bot mapping (the whole YAML file): its definition and its dialogue spec."""
    definition = parse_bot(data, source=source)
    return definition, parse_dialogue(definition, source=source)


def parse_dialogue(definition: BotDefinition, *, source: str = "<bot>") -> DialogueSpec:
    """The definition's ``dialogue`` section, validated against its intents and entities."""
    raw = definition.dialogue
    language = definition.language
    if raw is None:
        return DialogueSpec(builtins=Builtins.of(language), messages=DEFAULT_MESSAGES.get(language, Messages()))
    p = Problems(source)
    for key in sorted(set(raw) - KEYS):
        p.add(f"dialogue.{key}", f"unknown key; expected one of {sorted(KEYS)}")
    entities = {e.name: e for e in definition.entities}
    intents = {i.name for i in definition.intents}
    slots = parse_slots(raw.get("slots"), entities, p)
    by_name = {s.name: s for s in slots}
    actions = parse_actions(raw.get("actions"), by_name, p)
    forms = _forms(raw.get("forms"), intents, by_name, p)
    rules = parse_rules(raw.get("rules"), intents, by_name, p)
    _check_calls(forms, rules, {a.name for a in actions}, raw.get("actions"), p)
    handoff = parse_handoff(raw.get("handoff"), intents, p)
    for form in forms:
        if form.intent in handoff.intents:
            p.add(f"dialogue.forms.{form.intent}", "this intent also hands off; it cannot run a form")
    spec = DialogueSpec(
        slots, forms, parse_responses(raw.get("responses"), intents, by_name, p), rules,
        parse_escalation(raw.get("escalation"), p), handoff, parse_builtins(raw.get("builtins"), p, language),
        _messages(raw.get("messages"), p, DEFAULT_MESSAGES.get(language, Messages())),
        _confidence(raw.get("digression_confidence", 0.8), p), actions,
    )
    _check_placeholders(spec, definition, set(entities) | set(by_name), p)
    p.check()
    return spec


def _forms(raw: Any, intents: set[str], slots: Mapping[str, Slot], p: Problems) -> tuple[Form, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        p.add("dialogue.forms", "must be a mapping of intent name to its form")
        return ()
    out = []
    for intent, body in raw.items():
        where = f"dialogue.forms.{intent}"
        if intent not in intents:
            p.add(where, f"intent {intent!r} is not defined under 'intents'")
        if not isinstance(body, dict):
            p.add(where, "must be a mapping with 'slots' (and confirm, give_up, denied, keep_slots)")
            continue
        for key in sorted(set(body) - FORM_KEYS):
            p.add(f"{where}.{key}", f"unknown key; expected one of {sorted(FORM_KEYS)}")
        names = body.get("slots")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            p.add(f"{where}.slots", "must be a non-empty list of slot names")
            names = []
        for i, name in enumerate(names):
            field = f"{where}.slots[{i}]"
            if name not in slots:
                p.add(field, f"slot {name!r} is not defined under 'dialogue.slots'")
            elif names.index(name) != i:
                p.add(field, f"slot {name!r} is listed twice")
            elif not slots[name].fillable:
                p.add(field, f"slot {name!r} has no entity and is not from_text: the form can never complete")
            elif not slots[name].questions:
                p.add(field, f"slot {name!r} has no questions: the form cannot ask for it")
        texts = {k: body.get(k, "") for k in ("confirm", "give_up", "denied")}
        for key, text in texts.items():
            if not isinstance(text, str):
                p.add(f"{where}.{key}", "must be a string")
                texts[key] = ""
        keep = body.get("keep_slots", False)
        if not isinstance(keep, bool):
            p.add(f"{where}.keep_slots", "must be true or false")
        action = body.get("action", "")
        if not isinstance(action, str):
            p.add(f"{where}.action", "must name an action under 'dialogue.actions'")
            action = ""
        out.append(Form(str(intent), tuple(names), keep_slots=keep is True, action=action, **texts))
    return tuple(out)


def _check_calls(forms, rules, declared: set[str], raw_actions: Any, p: Problems) -> None:
    """Every action a form or rule calls is declared (a malformed declaration was reported
    by :func:`parse_actions`: not again here)."""
    named = set(raw_actions) if isinstance(raw_actions, dict) else set()
    calls = [(f"dialogue.forms.{f.intent}.action", f.action) for f in forms if f.action]
    calls += [(f"dialogue.rules[{i}].action", r.action) for i, r in enumerate(rules) if r.action]
    for where, name in calls:
        if name not in declared and name not in named:
            p.add(where, f"action {name!r} is not declared under 'dialogue.actions'")


def _messages(raw: Any, p: Problems, defaults: Messages) -> Messages:
    if raw is None:
        return defaults
    known = [f.name for f in fields(Messages)]
    if not isinstance(raw, dict):
        p.add("dialogue.messages", f"must be a mapping with some of {known}")
        return defaults
    good = {}
    for key, text in raw.items():
        if key not in known:
            p.add(f"dialogue.messages.{key}", f"unknown message; expected one of {known}")
        elif not isinstance(text, str) or not text.strip():
            p.add(f"dialogue.messages.{key}", "must be a non-empty string")
        else:
            good[key] = text
    return replace(defaults, **good)


def _confidence(raw: Any, p: Problems) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0.0 <= raw <= 1.0:
        p.add("dialogue.digression_confidence", f"must be a number between 0 and 1, got {raw!r}")
        return 0.8
    return float(raw)


def _check_placeholders(spec: DialogueSpec, definition: BotDefinition, known: set[str], p: Problems) -> None:
    texts: list[tuple[str, str]] = []
    for intent in definition.intents:
        texts += [(f"intents.{intent.name}.responses[{i}]", r) for i, r in enumerate(intent.responses)]
    for s in spec.slots:
        texts += [(f"dialogue.slots.{s.name}.questions[{i}]", q) for i, q in enumerate(s.questions)]
        texts.append((f"dialogue.slots.{s.name}.reask", s.reask))
    for f in spec.forms:
        texts += [(f"dialogue.forms.{f.intent}.{k}", getattr(f, k)) for k in ("confirm", "give_up", "denied")]
    for intent, items in spec.responses:
        texts += [(f"dialogue.responses.{intent}[{i}].text", r.text) for i, r in enumerate(items)]
    if spec.escalation:
        texts.append(("dialogue.escalation.response", spec.escalation.response))
    for a in spec.actions:
        texts.append((f"dialogue.actions.{a.name}.failure", a.failure))
        texts += [(f"dialogue.actions.{a.name}.responses.{n}", text) for n, text in a.responses]
    texts += [(f"dialogue.handoff.{k}", getattr(spec.handoff, k)) for k in ("message", "back")]
    texts += [(f"dialogue.messages.{f.name}", getattr(spec.messages, f.name)) for f in fields(Messages)]
    for field, text in texts:
        for name in PLACEHOLDER_RE.findall(text):
            if name not in known:
                p.add(field, f"placeholder {{{name}}} names neither an entity nor a slot")
