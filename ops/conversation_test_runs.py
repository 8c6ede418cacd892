"""Playing conversation tests (:mod:`botyard.ops.conversation_tests`) against one snapshot.

:func:`run` plays each conversation from the empty dialogue state, turn numbers from 1,
through the same dialogue step as the conversation actor (``predict``, ``Understanding.of``,
``engine.step``), and compares each expectation given. A conversation goes on after a
failed turn, as the bot itself would. :func:`verdict` is the tests' part of a promotion
gate (``promote --tests``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from botyard import action_protocol as wire
from botyard.action_protocol import ActionReply
from botyard.dialogue import engine
from botyard.dialogue.actions import Call, Result
from botyard.dialogue.spec import spec_of
from botyard.dialogue.state import DialogueState
from botyard.dialogue.turn import Responses, Understanding
from botyard.events.bot import PRODUCTION
from botyard.ops.conversation_tests import ConversationTests, parse
from botyard.ops.errors import AdminError

MAX_REASONS = 10
"""Failed turns a gate verdict spells out in its ``reasons`` (and ``failures``)."""

Progress = Callable[[int, int], None]
"""Called with (turns played, turns in all) while the tests run."""


# -- playing them -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure:
    field: str
    """The expectation (``slots.order_number``, ``entities``, ``reply_contains``, ...)."""
    expected: Any
    got: Any

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "expected": _json(self.expected), "got": _json(self.got)}


@dataclass(frozen=True, slots=True)
class TurnResult:
    number: int
    user: str
    failures: tuple[Failure, ...]
    got: Mapping[str, Any]
    """What the turn did: reply, intent, confidence, fallback, entities, and the state after it."""

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"turn": self.number, "user": self.user, "passed": self.passed,
                "failures": [f.to_dict() for f in self.failures], "got": _json(dict(self.got))}


@dataclass(frozen=True, slots=True)
class ConversationResult:
    name: str
    turns: tuple[TurnResult, ...]

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.turns)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "turns": [t.to_dict() for t in self.turns]}


@dataclass(frozen=True, slots=True)
class Report:
    """The results of one run of a tests file against one snapshot."""

    tenant: str
    bot: str
    snapshot: str
    source: str
    conversations: tuple[ConversationResult, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.conversations)

    @property
    def summary(self) -> dict[str, int]:
        """Conversations and turns; ``passed`` and ``failed`` count turns."""
        turns = [t for c in self.conversations for t in c.turns]
        failed = sum(not t.passed for t in turns)
        return {"conversations": len(self.conversations), "turns": len(turns), "passed": len(turns) - failed, "failed": failed,
                "conversations_failed": sum(not c.passed for c in self.conversations)}

    def failed_turns(self) -> list[tuple[str, TurnResult]]:
        return [(c.name, t) for c in self.conversations for t in c.turns if not t.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "bot": self.bot, "snapshot": self.snapshot, "source": self.source, "passed": self.passed,
                "summary": self.summary, "conversations": [c.to_dict() for c in self.conversations]}


def run(tests: ConversationTests, predictor, *, snapshot: str = "", progress: Progress | None = None) -> Report:
    """Play every conversation against ``predictor`` (a :class:`~botyard.models.runtime.Predictor`)."""
    definition = _definition(predictor, snapshot)
    spec, responses = spec_of(definition), Responses.of(definition)
    total, done = tests.turns, 0
    results = []
    for conversation in tests.conversations:
        state, turns = DialogueState(), []
        for number, turn in enumerate(conversation.turns, start=1):
            prediction = predictor.predict(turn.user)
            understanding = Understanding.of(prediction, turn.user)
            called: list[str] = []
            outcome = engine.run(spec, responses, state, understanding, number, _stubbed(turn.actions, called))
            state = outcome.state
            got = {
                "reply": outcome.reply_text, "intent": prediction.intent, "confidence": round(prediction.confidence, 4),
                "fallback": outcome.fallback, "entities": [dict(e) for e in understanding.entities], "slots": dict(state.slots),
                "form": state.form, "asked": state.asked, "confirming": state.confirming, "handed_off": state.handed_off, "called": called,
            }
            turns.append(TurnResult(number, turn.user, tuple(_check(turn.expect, got)), got))
            done += 1
            if progress is not None:
                progress(done, total)
        results.append(ConversationResult(conversation.name, tuple(turns)))
    return Report(definition.tenant, definition.bot, snapshot, tests.source, tuple(results))


def _stubbed(stubs: Mapping[str, Any], called: list[str]) -> Callable[[Call], Result]:
    """Actions answer as the tests file says (a reply, or a failure), else ``{}``; never over NATS."""

    def result(call: Call) -> Result:
        called.append(call.action)
        stub = stubs.get(call.action, ActionReply())
        if isinstance(stub, str):
            return Result(stub, error=f"{stub} (the tests file says so)")
        return Result(wire.LATER if stub.later else wire.ERROR if stub.error is not None else wire.OK, stub)

    return result


def _check(expect: tuple[tuple[str, Any], ...], got: Mapping[str, Any]):
    for key, wanted in expect:
        if key == "slots":
            for name, value in wanted.items():
                have = got["slots"].get(name)
                if not (value is None and name not in got["slots"]) and not (value is not None and _same(value, have)):
                    yield Failure(f"slots.{name}", value, have)
        elif key == "entities":
            missing = [e for e in wanted if not any(_found(e, f) for f in got["entities"])]
            if missing:
                found = [{"entity": f.get("entity"), "value": f.get("value")} for f in got["entities"]]
                yield Failure("entities", missing, found)
        elif key == "reply_contains":
            parts = wanted if isinstance(wanted, tuple) else (wanted,)
            if not all(p.casefold() in got["reply"].casefold() for p in parts):
                yield Failure(key, wanted, got["reply"])
        elif not _same(wanted, got[key]):
            yield Failure(key, wanted, got[key])


def _found(wanted: Mapping[str, Any], found: Mapping[str, Any]) -> bool:
    return found.get("entity") == wanted["entity"] and ("value" not in wanted or _same(wanted["value"], found.get("value")))


def _same(expected: Any, got: Any) -> bool:
    """Equal, lists as tuples; a number and its text are the same value (``4821377`` and
    ``"4821377"``), true/false only themselves."""
    if isinstance(expected, (list, tuple)) or isinstance(got, (list, tuple)):
        return (isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple)) and len(expected) == len(got)
                and all(_same(e, g) for e, g in zip(expected, got)))
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected is got
    return expected == got or (expected is not None and got is not None and str(expected) == str(got))


def _json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value


# -- where they run, and the promotion gate ----------------------------------------------------------


def snapshot_for(admin, tenant: str, bot: str, snapshot: str | None = None, alias: str | None = None, *,
                 train_hint: str = "train it first") -> str:
    """The id of the snapshot to test: ``snapshot`` (id, prefix or alias), else the one
    ``alias`` (default production) names; a clear error when the bot has none."""
    if snapshot and alias:
        raise AdminError("invalid_request", "give a snapshot or an alias, not both", field="alias")
    if snapshot:
        return admin.resolve(tenant, bot, snapshot).id
    alias = alias or PRODUCTION
    aggregate = admin.events.bot(tenant, bot)
    aliases = dict(aggregate.aliases) if aggregate is not None else {}
    if alias in aliases:
        return admin.resolve(tenant, bot, aliases[alias]).id
    if not admin.snapshots.list(tenant, bot):
        raise AdminError("unknown_snapshot", f"{tenant}/{bot} has no snapshot in the configured stores: {train_hint}",
                         tenant=tenant, bot=bot)
    named = ", ".join(f"{a} -> {s[:12]}" for a, s in sorted(aliases.items())) or "none"
    raise AdminError("unknown_alias", f"{tenant}/{bot} has no alias {alias!r} (aliases: {named}); name a snapshot instead",
                     tenant=tenant, bot=bot, alias=alias)


def run_on(admin, tenant: str, bot: str, snapshot_id: str, tests: Any, *, progress: Progress | None = None) -> Report:
    """Run ``tests`` (parsed, or the mapping / list of conversations to parse against the
    snapshot's own definition) on one snapshot of the bot, loaded by ``admin``."""
    predictor = admin.replay.predictor(snapshot_id)
    if not isinstance(tests, ConversationTests):
        tests = parse(tests, source="tests", definition=_definition(predictor, snapshot_id))
    return run(tests, predictor, snapshot=snapshot_id, progress=progress)


def _definition(predictor, snapshot: str):
    if predictor.definition is None:
        raise AdminError("invalid_request", f"snapshot {snapshot or '?'} carries no bot definition: conversation tests need one",
                         snapshot=snapshot)
    return predictor.definition


def verdict(report: Report) -> dict[str, Any]:
    """The tests' part of a promotion gate's verdict: ``passed``, ``summary``, ``reasons`` and
    the first failed turns."""
    failed = report.failed_turns()
    reasons = [f"{name!r} turn {t.number}: " + "; ".join(failure_text(f) for f in t.failures) for name, t in failed[:MAX_REASONS]]
    if len(failed) > MAX_REASONS:
        reasons.append(f"... and {len(failed) - MAX_REASONS} more failed turns")
    return {
        "passed": report.passed, "snapshot": report.snapshot, "summary": report.summary, "reasons": reasons,
        "failures": [{"conversation": name, **t.to_dict()} for name, t in failed[:MAX_REASONS]],
    }


def verdict_line(v: dict[str, Any]) -> str:
    """One line for the alias move's reason and the CLI."""
    s = v["summary"]
    if v["passed"]:
        return f"tests: passed ({count(s['conversations'], 'conversation')}, {count(s['turns'], 'turn')})"
    return (f"tests: refused ({s['failed']} of {count(s['turns'], 'turn')} failed, in {s['conversations_failed']} of "
            f"{count(s['conversations'], 'conversation')})")


def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def failure_text(f: Failure) -> str:
    """``form: expected none, got 'order_status'``"""
    if f.field == "reply_contains":
        return f"reply_contains: expected a reply containing {show(f.expected)}, got {show(f.got)}"
    if f.field == "entities":
        return f"entities: expected {show(f.expected)} among the entities found, got {show(f.got) if f.got else 'none'}"
    if f.field.startswith("slots."):  # a slot that is not set is None
        return f"{f.field}: expected {show(f.expected, 'not set')}, got {show(f.got, 'not set')}"
    return f"{f.field}: expected {show(f.expected)}, got {show(f.got)}"


def show(value: Any, none: str = "none") -> str:
    if value is None:
        return none
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)

