"""``botyard snapshots list|show|log|promote|rollback|diff|gc``

The CLI changes aliases by recording the event itself (the event store is the truth),
then tells running nodes on NATS; a node that does not hear it reads the move from the
event log within a second.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from botyard.errors import BotyardError
from botyard.events.bot import PRODUCTION
from botyard.ops.admin import Admin
from botyard.ops.cli.common import admin_for, bot_ref, print_gate, print_move, when
from botyard.ops.config import Config

log = logging.getLogger(__name__)


def _print_list(result: dict[str, Any]) -> None:
    print(f"{result['tenant']}/{result['bot']}: {len(result['snapshots'])} snapshots")
    print(f"  {'id':<14}{'created':<21}{'size':>9}  {'parent':<14}aliases")
    for s in result["snapshots"]:
        print(
            f"  {s['id'][:12]:<14}{when(s['created_at']):<21}{s['size'] / 1e6:>7.2f}MB  "
            f"{(s['parent'] or '-')[:12]:<14}{', '.join(s['aliases'])}"
        )


def _print_log(result: dict[str, Any]) -> None:
    print(f"{result['tenant']}/{result['bot']}: " + ", ".join(f"{a} -> {s[:12]}" for a, s in result["aliases"].items()))
    for m in result["moves"]:
        print(f"  {when(m['at'])}  ", end="")
        print_move(m)


# -- the command ----------------------------------------------------------------------------------


def cmd_snapshots(args: argparse.Namespace, config: Config) -> int:
    with admin_for(config) as admin:
        if args.action == "gc":
            tenant, bot = bot_ref(args.bot) if args.bot else (None, None)
            result = admin.gc(tenant, bot, keep=args.keep, dry_run=args.dry_run)
            if not args.json:
                verb = "would delete" if args.dry_run else "deleted"
                print(f"{verb} {len(result['deleted'])} snapshots, kept {result['kept']}")
                for sid in result["deleted"]:
                    print(f"  {sid}")
        else:
            tenant, bot = bot_ref(args.bot)
            result = _run(admin, args, tenant, bot)
        if args.json:
            print(json.dumps(result, indent=2, default=str))
    return 0


def _run(admin: Admin, args: argparse.Namespace, tenant: str, bot: str) -> dict[str, Any]:
    a = args.action
    if a == "list":
        result = admin.list(tenant, bot)
        if not args.json:
            _print_list(result)
    elif a == "log":
        result = admin.log(tenant, bot)
        if not args.json:
            _print_log(result)
    elif a == "show":
        result = admin.show(tenant, bot, args.snapshot)
        if not args.json:
            print(json.dumps(result, indent=2, default=str))
    elif a == "diff":
        result = admin.diff(tenant, bot, args.a, args.b)
        if not args.json:
            print(json.dumps(result, indent=2, default=str))
    elif a == "promote":
        tests = _tests(admin, tenant, bot, args.snapshot, args.tests) if args.tests else None
        try:
            result = admin.promote(
                tenant, bot, args.snapshot, alias=args.alias, reason=args.reason or "", gate=args.gate, force=args.force,
                tests=tests,
            )
        except BotyardError as exc:
            if exc.code == "gate_refused" and not args.json:
                _print_verdict(exc.fields["gate"])
            raise
        if not args.json:
            if result.get("gate"):
                _print_verdict(result["gate"])
            print_move(result)
    else:
        result = admin.rollback(tenant, bot, alias=args.alias, to=args.to, reason=args.reason or "")
        if not args.json:
            print_move(result)
    return result


def _tests(admin: Admin, tenant: str, bot: str, ref: str, path: str):
    """The conversation tests file, its names checked against the snapshot to be promoted."""
    from botyard.ops.conversation_tests import load

    return load(path, definition=admin.replay.predictor(admin.resolve(tenant, bot, ref).id).definition)


def _print_verdict(verdict: dict[str, Any]) -> None:
    """The replay gate's verdict, the conversation tests' (``--tests``), or both."""
    if "tests" not in verdict:
        print_gate(verdict)
        return
    if "replay" in verdict:
        print_gate(verdict["replay"])
    from botyard.ops.conversation_test_runs import verdict_line

    t = verdict["tests"]
    print("conversation " + verdict_line(t).replace("tests: refused", "tests: REFUSED", 1))
    for reason in t["reasons"]:
        print(f"  failed: {reason}")


def add_parser(sub: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    """Add ``snapshots`` and its actions; return the action parsers (they take the config flags)."""
    p = sub.add_parser("snapshots", help="list, inspect, promote, roll back and collect snapshots")
    actions = p.add_subparsers(dest="action", required=True)

    def action(name: str, help: str, bot: bool = True) -> argparse.ArgumentParser:
        q = actions.add_parser(name, help=help)
        if bot:
            q.add_argument("bot", metavar="TENANT/BOT")
        q.add_argument("--json", action="store_true", help="print the result as JSON")
        q.set_defaults(func=cmd_snapshots)
        return q

    action("list", "a bot's snapshots and the aliases naming them")
    action("log", "every alias move of a bot: who, when, from, to, why")
    q = action("show", "one snapshot's manifest")
    q.add_argument("snapshot", help="id, unique id prefix, or alias")
    q = action("diff", "compare two snapshots' manifests and metrics")
    q.add_argument("a", help="id, prefix or alias")
    q.add_argument("b", help="id, prefix or alias")
    q = action("promote", "point an alias (default production) at a snapshot, verified first")
    q.add_argument("snapshot", help="id, unique id prefix, or an alias (e.g. staging) to copy")
    q.add_argument("--alias", default=PRODUCTION)
    q.add_argument("--reason")
    q.add_argument(
        "--gate", action="store_true",
        help="replay the bot's last BOTYARD_GATE_TURNS turns through the snapshot first; refuse if it does worse",
    )
    q.add_argument(
        "--tests", metavar="FILE",
        help="play these conversation tests (docs/testing.md) on the snapshot first; refuse if any turn fails",
    )
    q.add_argument("--force", action="store_true", help="with --gate or --tests: promote even if refused (recorded)")
    q = action("rollback", "return an alias to its previous target, or --to an earlier one")
    q.add_argument("--alias", default=PRODUCTION)
    q.add_argument("--to", help="an earlier target of the alias (id or prefix)")
    q.add_argument("--reason")
    q = action("gc", "delete old snapshots: keeps each bot's newest N and every one an alias names or may roll back to", bot=False)
    q.add_argument("bot", metavar="TENANT/BOT", nargs="?", help="only this bot (default: every bot)")
    q.add_argument("--keep", type=int, default=5)
    q.add_argument("--dry-run", action="store_true")
    return list(actions.choices.values())
