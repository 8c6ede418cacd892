"""The built-in intents every dialogue understands: cancel, affirm, deny.

A turn is one of them when the classifier confidently predicts the bot intent named for it
(a bot may train its own ``cancel`` intent, or name another with ``intent:``), or when its
text is one of the phrases or starts with one (``no, the order is 4821378`` is a deny; for
cancel only phrases of several words count as a start). The phrases are overridable:

```yaml
dialogue:
  builtins:
    cancel: {intent: stop_that, examples: [never mind, stop, forget it]}
    affirm: {examples: ["yes", yep, "that's right"]}   # quote yes/no/on/off: YAML reads them as true/false
    deny: {examples: ["no", nope]}
```

The default phrases are the bot's language's (``language:`` in the bot file): a Korean bot's
affirm is 네, 예, 응, 맞아요...; its deny 아니요, 아뇨...; its cancel 취소, 취소할게요, 그만...
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from botyard.dialogue.errors import Problems
from botyard.models.definition import INTENT_RE

KINDS = ("cancel", "affirm", "deny")
DEFAULTS = {
    "cancel": ("never mind", "nevermind", "stop", "cancel", "cancel that", "forget it", "forget about it", "abort", "quit",
               "i changed my mind"),
    "affirm": ("yes", "yeah", "yep", "yup", "y", "sure", "correct", "right", "that's right", "that is right", "exactly",
               "ok", "okay", "absolutely", "confirm", "of course", "indeed"),
    "deny": ("no", "nope", "nah", "n", "not really", "wrong", "that's wrong", "incorrect", "no way", "not quite"),
}
KOREAN = {
    "cancel": ("취소", "취소할게요", "취소해 주세요", "취소해주세요", "취소요", "그만", "그만할게요", "그만해요", "됐어요", "됐습니다",
               "안 할래요", "안할래요", "필요 없어요", "필요없어요", "관둘게요", "그만둘게요", "다음에 할게요", "잊어버리세요"),
    "affirm": ("네", "예", "응", "넵", "네네", "넹", "ㅇㅇ", "맞아요", "맞습니다", "맞아", "네 맞아요", "네 맞습니다", "예 맞아요",
               "그래요", "그렇습니다", "좋아요", "좋습니다", "확인", "진행해 주세요", "진행해주세요", "물론이죠", "그럼요"),
    "deny": ("아니요", "아니오", "아뇨", "아니", "아니에요", "아닙니다", "ㄴㄴ", "틀려요", "틀렸어요", "아니 틀려요",
             "그건 아니에요", "싫어요", "안 돼요", "안돼요"),
}
PHRASES = {"en": DEFAULTS, "ko": KOREAN}
"""The default phrases by bot language."""
WORD_RE = re.compile(r"[\w']+")


@dataclass(frozen=True, slots=True)
class Builtin:
    kind: str
    intent: str
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Builtins:
    cancel: Builtin = Builtin("cancel", "cancel", DEFAULTS["cancel"])
    affirm: Builtin = Builtin("affirm", "affirm", DEFAULTS["affirm"])
    deny: Builtin = Builtin("deny", "deny", DEFAULTS["deny"])

    @classmethod
    def of(cls, language: str) -> "Builtins":
        """The defaults of a bot written in ``language`` (English where it has none of its own)."""
        phrases = PHRASES.get(language, DEFAULTS)
        return cls(*(Builtin(kind, kind, phrases[kind]) for kind in ("cancel", "affirm", "deny")))

    @property
    def intents(self) -> set[str]:
        return {self.cancel.intent, self.affirm.intent, self.deny.intent}

    def recognise(self, intent: str, confident: bool, text: str) -> str | None:
        """``cancel``, ``affirm``, ``deny`` or ``None`` for this turn; ``confident``: the
        classifier's ``intent`` is no fallback and clears the digression confidence."""
        builtins = (self.cancel, self.affirm, self.deny)
        if confident:
            for b in builtins:
                if intent == b.intent:
                    return b.kind
        words = _normal(text)
        split = words.split(" ")
        # The text is a phrase, or starts with one: any phrase for yes/no ("no, the order is
        # 4821378"), only phrases of several words for cancel, so that a free-text answer like
        # "stopped working" or "stop sign is bent" is not read as one.
        starts = [" ".join(split[:n]) for n in range(1, len(split))]
        for b in builtins:
            phrases = _phrases(b)
            if words in phrases or any(s in phrases and (b.kind != "cancel" or " " in s) for s in starts):
                return b.kind
        return None


@functools.lru_cache(maxsize=4096)
def _phrases(b: Builtin) -> frozenset[str]:
    return frozenset(map(_normal, b.examples))


def _normal(phrase: str) -> str:
    return " ".join(WORD_RE.findall(phrase.lower().replace("’", "'")))


def parse_builtins(raw: Any, problems: Problems, language: str = "en") -> Builtins:
    defaults = PHRASES.get(language, DEFAULTS)
    if raw is None:
        return Builtins.of(language)
    if not isinstance(raw, dict):
        problems.add("dialogue.builtins", f"must be a mapping with some of {list(KINDS)}")
        return Builtins.of(language)
    made = {}
    for kind, body in raw.items():
        where = f"dialogue.builtins.{kind}"
        if kind not in KINDS:
            problems.add(where, f"unknown built-in; expected one of {list(KINDS)}")
            continue
        if not isinstance(body, dict) or set(body) - {"intent", "examples"}:
            problems.add(where, "must be a mapping with 'intent' and/or 'examples'")
            continue
        intent = body.get("intent", kind)
        if not isinstance(intent, str) or not INTENT_RE.match(intent):
            problems.add(f"{where}.intent", "must be an intent name")
            intent = kind
        examples = body.get("examples", defaults[kind])
        if isinstance(examples, list) and any(isinstance(e, bool) for e in examples):
            problems.add(f"{where}.examples", "YAML reads a bare yes, no, on or off as true/false: quote it ('yes')")
            examples = defaults[kind]
        elif not isinstance(examples, (list, tuple)) or not examples or not all(isinstance(e, str) and _normal(e) for e in examples):
            problems.add(f"{where}.examples", "must be a non-empty list of phrases with words in them")
            examples = defaults[kind]
        made[kind] = Builtin(kind, intent, tuple(examples))
    return Builtins(**{kind: made.get(kind, getattr(Builtins.of(language), kind)) for kind in KINDS})
