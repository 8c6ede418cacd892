"""``botyard test BOT.yml CONVERSATIONS.yml``: the bot's conversation tests against one of
its snapshots, in this process (docs/testing.md). Exit status 0: every turn passed; 1: some
failed; 2: the tests could not run (as every command's errors)."""

from __future__ import annotations

import argparse
import json
import sys

from botyard.models.definition import load_bot
from botyard.models.runtime import Predictor
from botyard.ops import conversation_test_runs as runs
from botyard.ops.cli.common import admin_for
from botyard.ops.config import Config
from botyard.ops.conversation_tests import load

WIDTHS = {"conversation": 60, "user": 40}
"""The table's widest conversation name and user text (longer ones are cut with '...')."""


class _Bar:
    """tqdm over the turns played (stderr, so stdout stays the table or the JSON)."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="turn", file=sys.stderr, mininterval=0.5, desc="testing", leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_test(args: argparse.Namespace, config: Config) -> int:
    definition = load_bot(args.bot_file)
    tenant, bot = definition.tenant, definition.bot
    with admin_for(config) as admin:
        hint = f"run `botyard train {args.bot_file}` first"
        snapshot_id = runs.snapshot_for(admin, tenant, bot, args.snapshot, args.alias, train_hint=hint)
        snapshot = admin.snapshots.load(snapshot_id)  # verified against its id
    if snapshot.manifest.get("definition_hash") != definition.content_hash():
        print(
            f"botyard: warning: snapshot {snapshot_id[:12]} was trained from another version of {args.bot_file} "
            f"(its definition hash differs); `botyard train {args.bot_file}` makes a current one", file=sys.stderr,
        )
    predictor = Predictor.from_snapshot(snapshot)
    tests = load(args.tests_file, definition=predictor.definition)  # names checked against what the snapshot knows
    bar = _Bar()
    try:
        report = runs.run(tests, predictor, snapshot=snapshot_id, progress=None if args.json else bar)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(report_text(report))
    return 0 if report.passed else 1


def report_text(report: runs.Report) -> str:
    """The pass/fail table (a row per turn), a diff per failed turn, and the summary line."""
    rows = [(c.name, str(t.number), t.user, "PASS" if t.passed else "FAIL") for c in report.conversations for t in c.turns]
    head = ("conversation", "turn", "user", "result")
    cut = [(_cut(n, WIDTHS["conversation"]), k, _cut(u, WIDTHS["user"]), r) for n, k, u, r in rows]
    w = [max(len(x) for x in col) for col in zip(head, *cut)]
    line = lambda r: f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:<{w[2]}}  {r[3]}"
    lines = [line(head), line(tuple("-" * n for n in w)), *map(line, cut)]
    failed = report.failed_turns()
    if failed:
        lines += ["", "failures:"]
        for name, t in failed:
            lines.append(f"  {name}, turn {t.number}: {t.user!r}")
            lines += [f"    {text}" for f in t.failures for text in diff_lines(f)]
            said = "" if any(f.field.startswith("reply") for f in t.failures) else f"; reply {runs.show(t.got['reply'])}"
            lines.append(f"    (intent {t.got['intent']} {t.got['confidence']:.2f}{' fallback' if t.got['fallback'] else ''}{said})")
    s = report.summary
    where = f" (in {s['conversations_failed']} of {runs.count(s['conversations'], 'conversation')})" if s["failed"] else ""
    lines += ["", f"{'PASSED' if report.passed else 'FAILED'}: {runs.count(s['conversations'], 'conversation')}, "
              f"{runs.count(s['turns'], 'turn')}: {s['passed']} passed, {s['failed']} failed{where}; "
              f"{report.tenant}/{report.bot} snapshot {report.snapshot[:12]}"]
    return "\n".join(lines)


def diff_lines(f: runs.Failure) -> list[str]:
    """``form`` / ``- expected: 'order_status'`` / ``+ got:      none``"""
    none = "not set" if f.field.startswith("slots.") else "none"
    expected, got = runs.show(f.expected, none), runs.show(f.got, none)
    if f.field == "reply_contains":
        expected = f"a reply containing {expected}"
    elif f.field == "entities":
        expected, got = f"among the entities: {expected}", got if f.got else "no entities"
    return [f"{f.field}:", f"  - expected: {expected}", f"  + got:      {got}"]


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def add_parser(sub: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    p = sub.add_parser("test", help="play a bot's conversation tests against one of its snapshots (default: production)")
    p.add_argument("bot_file", metavar="BOT.yml", help="the bot file (names the bot; its snapshot should be of this version)")
    p.add_argument("tests_file", metavar="CONVERSATIONS.yml", help="the conversation tests (docs/testing.md)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--snapshot", metavar="ID", help="the snapshot to test: id, unique prefix or alias")
    which.add_argument("--alias", help="test the snapshot this alias names (default: production)")
    p.add_argument("--json", action="store_true", help="print the results as JSON (exit status as without)")
    p.set_defaults(func=cmd_test)
    return [p]
