"""``botyard check BOT.yml``: validate a bot file, its ``dialogue`` section included, and print
every error and warning at once, without training (docs/bots.md#validation). Exit status 0: no
errors (warnings allowed); 1: errors; 2: the file cannot be read (as every command's errors).

``botyard train`` and ``botyard demo`` read bot files through :func:`load_checked` too: the
same errors refuse them, all at once, and the same warnings are printed on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import yaml

from botyard.dialogue.errors import DialogueDefinitionError
from botyard.dialogue.spec import parse_dialogue
from botyard.models.definition import BotDefinition, inspect_bot
from botyard.models.errors import DefinitionError
from botyard.ops.config import Config


@dataclass(frozen=True)
class Checked:
    source: str
    definition: BotDefinition | None
    """As far as it could be read (None when it could not be)."""
    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        pairs = lambda found: [{"field": f, "problem": p} for f, p in found]  # noqa: E731
        out = {"file": self.source, "ok": not self.errors, "errors": pairs(self.errors), "warnings": pairs(self.warnings)}
        if self.definition is not None:
            out["bot"] = f"{self.definition.tenant}/{self.definition.bot}"
        return out


def check_file(path: str | Path) -> Checked:
    """Every error and warning of a bot file; :class:`DefinitionError` only when it cannot be read."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(source, "(file)", f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise DefinitionError(source, "(file)", f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return Checked(source, None, [("(file)", f"not valid YAML: {exc}")])
    definition, problems = inspect_bot(data, source=source)
    errors = list(problems.errors)
    if definition is not None:
        try:
            parse_dialogue(definition, source=source)
        except DialogueDefinitionError as exc:
            errors += exc.problems
    return Checked(source, definition, errors, list(problems.warnings))


def load_checked(path: str | Path, out: TextIO | None = None) -> BotDefinition:
    """The bot file's definition, refused with every error of both sections at once; its
    warnings printed on ``out`` (default stderr)."""
    checked = check_file(path)
    if checked.errors:
        raise DefinitionError(checked.source, *checked.errors[0], *checked.errors[1:])
    for line in warning_lines(checked):
        print(line, file=out or sys.stderr)
    assert checked.definition is not None
    return checked.definition


def warning_lines(checked: Checked) -> list[str]:
    return [f"{checked.source}: {f}: warning: {text}" for f, text in checked.warnings]


def report_text(checked: Checked) -> str:
    """Each error, then each warning, one a line with its field; then the summary."""
    lines = [f"{checked.source}: {f}: error: {problem}" for f, problem in checked.errors] + warning_lines(checked)
    counts = f"{_count(len(checked.errors), 'error')}, {_count(len(checked.warnings), 'warning')}"
    d = checked.definition
    if checked.errors:
        lines.append(f"FAILED: {checked.source}: {counts}")
    elif d is not None:
        examples = sum(len(i.examples) for i in d.intents)
        what = (f"{_count(len(d.intents), 'intent')}, {_count(examples, 'example')}, {_count(len(d.entities), 'entity')}"
                + (", a dialogue section" if d.dialogue is not None else ""))
        lines.append(f"OK: {checked.source} ({d.tenant}/{d.bot}: {what}): {counts}")
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{n} {noun if n == 1 else plural}"


def cmd_check(args: argparse.Namespace, config: Config) -> int:
    checked = check_file(args.bot_file)
    print(json.dumps(checked.to_dict(), indent=2, ensure_ascii=False) if args.json else report_text(checked))
    return 1 if checked.errors else 0


def add_parser(sub: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    p = sub.add_parser("check", help="validate a bot file and list every error and warning (no training)")
    p.add_argument("bot_file", metavar="BOT.yml")
    p.add_argument("--json", action="store_true", help="print the errors and warnings as JSON (exit status as without)")
    p.set_defaults(func=cmd_check)
    return [p]
