"""``botyard replay``, ``label``, ``labels`` and ``export``: debugging from recorded turns."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from botyard.errors import BotyardError
from botyard.events.labels import turn_ref
from botyard.ops.cli.common import admin_for, bot_ref, entities_text
from botyard.ops.config import Config

DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def when(value: str | None) -> float | None:
    """``2026-11-20T09:00``, epoch seconds, or a time ago (``30m``, ``2h``, ``7d``)."""
    if value is None:
        return None
    m = DURATION_RE.match(value)
    if m:
        return time.time() - float(m.group(1)) * UNITS[m.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise BotyardError(f"cannot read {value!r} as a time: use ISO 8601, epoch seconds, or 30m / 2h / 7d ago") from None


def conversation_ref(ref: str) -> tuple[str, str, str | None]:
    """``TENANT/BOT`` (every conversation) or ``TENANT/BOT/CONVERSATION_ID``."""
    parts = ref.split("/", 2)
    if len(parts) < 2 or not all(parts):
        raise BotyardError(f"expected TENANT/BOT or TENANT/BOT/CONVERSATION_ID, got {ref!r}")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def parse_turn_ref(ref: str) -> tuple[str, str, str, int]:
    """``TENANT/BOT/CONVERSATION_ID#TURN`` (as ``replay`` and ``export`` print it)."""
    tenant, bot, conversation_id = conversation_ref(ref.rpartition("#")[0] or ref)
    number = ref.rpartition("#")[2]
    if conversation_id is None or "#" not in ref or not number.isdigit():
        raise BotyardError(f"expected TENANT/BOT/CONVERSATION_ID#TURN, got {ref!r}")
    return tenant, bot, conversation_id, int(number)


class _Bar:
    """tqdm over the distinct texts a what-if replays (stderr, so --json stays clean)."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="text", file=sys.stderr, mininterval=0.5, desc="replaying")
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# -- replay ---------------------------------------------------------------------------------------


def cmd_replay(args: argparse.Namespace, config: Config) -> int:
    tenant, bot, conversation_id = conversation_ref(args.ref)
    with admin_for(config) as admin:
        if args.against:
            bar = _Bar()
            try:
                report = admin.whatif(
                    tenant, bot, args.against, conversation_id=conversation_id, since=when(args.since),
                    until=when(args.until), last=args.last, max_changes=args.max_changes,
                    progress=None if args.json else bar,
                )
            finally:
                bar.close()
            print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else _whatif_text(report, tenant, bot))
            return 0
        if conversation_id is None:
            raise BotyardError("give TENANT/BOT/CONVERSATION_ID to replay one conversation, or --against SNAPSHOT")
        result = admin.replay.transcript(tenant, bot, conversation_id, at=args.at)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        _print_transcript(result)
    return 0


def _print_transcript(result: dict[str, Any]) -> None:
    key = f"{result['tenant']}/{result['bot']}/{result['conversation_id']}"
    turns = result["turns"]
    upto = f" up to turn {result['at']}" if result["at"] is not None else ""
    print(f"conversation {key}: {len(turns)} turns{upto}")
    for t in turns:
        stamp = datetime.fromtimestamp(t["received_at"]).strftime("%Y-%m-%d %H:%M:%S")
        fb = " fallback" if t["fallback"] else ""
        ents = "".join(f" · {e['entity']}={e['value']}" for e in t["entities"])
        label = f" · labelled {t['label']}" if t["label"] else ""
        print(f"#{t['turn']:<3} {stamp}  user: {t['user_text']}")
        print(
            f"     {t['intent']} {t['confidence']:.2f}{fb}{ents}{label} · snapshot {t['snapshot'][:12]} "
            f"· node {t['node']} · {t['latency_ms']:.1f} ms"
        )
        print(f"     bot:  {t['reply']}")
        after = t.get("after")
        if after:
            for a in after["agent"]:
                print(f"     agent {a['agent'] or '?'}: {a['text']}{'' if a['delivered'] else ' (with the next turn)'}")
            print(f"     {_dialogue_line(after)}")
    s = result["state"]
    print(f"state: {s['turns']} turns, last intent {s['last_intent']}, version {s['version']}")
    d = s.get("dialogue")
    if d and (d["slots"] or d["form"] or d["handed_off"]):
        print(f"dialogue: {_dialogue_line({**d, 'slots': d['slots']})}")


def _dialogue_line(d: dict[str, Any]) -> str:
    """``slots order_number=4821377 · form start_return asking item · handed off``"""
    slots = " ".join(f"{k}={', '.join(v) if isinstance(v, list) else v}" for k, v in d["slots"].items()) or "none"
    form = f" · form {d['form']}" + (f" asking {d['asked']}" if d.get("asked") else "") if d.get("form") else ""
    return f"slots {slots}{form}{' · handed off' if d.get('handed_off') else ''}"


def _whatif_text(r: dict[str, Any], tenant: str, bot: str) -> str:
    fr, lab = r["fallback_rate"], r["labelled"]
    lines = [
        f"what-if {tenant}/{bot} against {r['against'][:12]}: {r['turns']} turns in {r['conversations']} conversations "
        f"({r['distinct_texts']} distinct texts)",
        f"  intent changed: {r['changed_intent']} ({r['changed_intent_share']:.1%}); reply changed: {r['changed_reply']}; "
        f"slots or form changed: {r.get('changed_dialogue', 0)}",
        f"  fallback rate: {fr['before']:.1%} -> {fr['after']:.1%}",
    ]
    if lab["turns"]:
        lines.append(f"  labelled turns: {lab['turns']}: right before {lab['right_before']}, right with it {lab['right_after']}")
    for c in r["changes"]:
        b, a = c["before"], c["after"]
        label = f" [label {c['label']}]" if c["label"] else ""
        lines.append(f"  {c['ref']}: {c['user_text']!r}{label}")
        lines.append(f"      was {b['intent']} {b['confidence']:.2f}: {b['reply']}")
        lines.append(f"      now {a['intent']} {a['confidence']:.2f}: {a['reply']}")
    if r["changes_omitted"]:
        lines.append(f"  ... and {r['changes_omitted']} more changed turns (--max-changes, or --json)")
    return "\n".join(lines)


# -- labels and export ----------------------------------------------------------------------------


def cmd_label(args: argparse.Namespace, config: Config) -> int:
    tenant, bot, conversation_id, turn = parse_turn_ref(args.turn)
    with admin_for(config) as admin:
        result = admin.label(tenant, bot, conversation_id, turn, args.intent)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"labelled {result['ref']} ({result['user_text']!r}) as {result['intent']}; served {result['served_intent']}")
    return 0


def cmd_labels(args: argparse.Namespace, config: Config) -> int:
    tenant, bot = bot_ref(args.bot)
    with admin_for(config) as admin:
        labels = admin.replay.labels(tenant, bot)
    for item in labels:
        if args.json:
            print(json.dumps({"ref": turn_ref(tenant, bot, item["conversation_id"], item["turn"]), **item}, ensure_ascii=False))
        else:
            ref = turn_ref(tenant, bot, item["conversation_id"], item["turn"])
            print(f"{ref}  {item['intent']:<20} (served {item['served_intent']})  {item['user_text']!r}")
    if not args.json:
        print(f"{len(labels)} labelled turns of {tenant}/{bot}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace, config: Config) -> int:
    tenant, bot = bot_ref(args.bot)
    with admin_for(config) as admin:
        rows = admin.replay.export(tenant, bot, since=when(args.since), until=when(args.until))
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    finally:
        if args.output:
            out.close()
    print(f"exported {len(rows)} turns of {tenant}/{bot}" + (f" to {args.output}" if args.output else ""), file=sys.stderr)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    p = sub.add_parser(
        "replay", help="a conversation's transcript from its events (--at N: its state then), or --against a snapshot",
    )
    p.add_argument("ref", metavar="TENANT/BOT[/CONVERSATION_ID]")
    p.add_argument("--at", type=int, help="show the conversation as it was right after turn N")
    p.add_argument("--against", metavar="SNAPSHOT", help="what-if: re-run the user turns through this snapshot (id, prefix, alias)")
    p.add_argument("--since", help="what-if over a bot: turns received since (ISO time, epoch, or 30m/2h/7d ago)")
    p.add_argument("--until", help="... and before this time")
    p.add_argument("--last", type=int, help="what-if: only the last N turns")
    p.add_argument("--max-changes", type=int, default=50, help="changed turns to list (totals count all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_replay)
    parsers = [p]

    p = sub.add_parser("label", help="record the intent a recorded turn should have had")
    p.add_argument("turn", metavar="TENANT/BOT/CONVERSATION_ID#TURN")
    p.add_argument("intent")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_label)
    parsers.append(p)

    p = sub.add_parser("labels", help="a bot's labelled turns")
    p.add_argument("bot", metavar="TENANT/BOT")
    p.add_argument("--json", action="store_true", help="JSON lines")
    p.set_defaults(func=cmd_labels)
    parsers.append(p)

    p = sub.add_parser("export", help="a bot's recorded turns (with labels) as JSON lines")
    p.add_argument("bot", metavar="TENANT/BOT")
    p.add_argument("-o", "--output", help="file to write (default: standard output)")
    p.add_argument("--since")
    p.add_argument("--until")
    p.set_defaults(func=cmd_export)
    parsers.append(p)
    return parsers


# -- a conversation's turns -------------------------------------------------------------------


def cmd_history(args: argparse.Namespace, config: Config) -> int:
    from botyard.events.store import EventStore

    parts = args.conversation.split("/")
    if len(parts) == 3:
        tenant, bot, conversation_id = parts
    elif len(parts) == 1 and args.bot:
        (tenant, bot), conversation_id = bot_ref(args.bot), parts[0]
    else:
        raise BotyardError("give the conversation as TENANT/BOT/CONVERSATION_ID, or CONVERSATION_ID with --bot TENANT/BOT")
    store = EventStore(config.events_url, config.data_dir)
    try:
        turns = store.turns(tenant, bot, conversation_id)
    finally:
        store.close()
    if args.json:
        for e in turns:
            row = {k: v for k, v in vars(e).items() if k not in ("originator_id",)}
            row["timestamp"] = e.timestamp.isoformat()
            print(json.dumps(row, ensure_ascii=False))
        return 0
    print(f"conversation {tenant}/{bot}/{conversation_id}: {len(turns)} turns")
    for e in turns:
        when = datetime.fromtimestamp(e.received_at).strftime("%Y-%m-%d %H:%M:%S")
        fb = " fallback" if e.fallback else ""
        print(f"#{e.turn:<3} {when}  user: {e.user_text}")
        found = entities_text(e.entities)
        print(f"     {e.intent} {e.confidence:.2f}{fb}{found} · snapshot {e.snapshot[:12]} · node {e.node}")
        print(f"     bot:  {e.reply}")
    return 0


# -- API tokens -------------------------------------------------------------------------------------


def cmd_tokens(args: argparse.Namespace, config: Config) -> int:
    """``issue TENANT``: an admin HTTP API token and a NATS credential (an nkey seed file);
    ``revoke TENANT NAME`` (both of that name) or ``revoke TOKEN``; ``list TENANT``."""
    from botyard.events.tenant import digest, token_tenant
    from botyard.ops.admin import default_actor
    from botyard.ops.bus_auth import issue_credentials, tenant_inbox
    from botyard.protocol import check_name

    with admin_for(config) as admin:
        if args.action == "issue":
            tenant = check_name("tenant", args.tenant)
            name = args.name or "default"
            creds = Path(args.out) if args.out else config.data_dir / "creds" / f"{tenant}-{name}.nk"
            token, key = issue_credentials(admin.events, tenant, name, creds, default_actor())
            print(token)
            print(f"HTTP API token (above) and NATS credential {creds} ({key}) for tenant {tenant}, named {name!r}; "
                  f"NATS clients connect with that nkey seed and the inbox prefix {tenant_inbox(tenant)} "
                  "(docs/security.md). Neither secret is stored: keep them.", file=sys.stderr)
            return 0
        if args.action == "list":
            tenant = check_name("tenant", args.tenant)
            record = admin.events.tenant(tenant)
            keys = record.nats_keys() if record is not None else {}
            names = sorted({t["name"] for t in (record.tokens.values() if record else [])} | {k["name"] for k in keys.values()})
            for n in names:
                print(f"{n}\thttp={sum(t['name'] == n for t in record.tokens.values())}\t"  # type: ignore[union-attr]
                      f"nats={','.join(k for k, v in keys.items() if v['name'] == n) or '-'}")
            return 0
        if args.name_to_revoke:
            tenant = check_name("tenant", args.tenant)
            record = admin.events.tenant(tenant)
            name = args.name_to_revoke
            digests = [d for d, t in (record.tokens.items() if record else []) if t["name"] == name]
            keys = [k for k, v in (record.nats_keys().items() if record else []) if v["name"] == name]
            if not digests and not keys:
                raise BotyardError(f"tenant {tenant} has no credential named {name!r}")
            actor = default_actor()

            def revoke(t) -> None:
                for d in digests:
                    t.revoke(d, actor)
                for k in keys:
                    t.revoke_nats_key(tenant, k, actor)

            admin.events.change_tenant(tenant, revoke)
            print(f"revoked {len(digests)} HTTP token(s) and {len(keys)} NATS credential(s) of {tenant} named {name!r} "
                  "(the node drops them within a heartbeat)", file=sys.stderr)
            return 0
        tenant = token_tenant(args.tenant)
        if tenant is None:
            raise BotyardError("give the token to revoke (byt_<tenant>_...), or TENANT NAME")
        record = admin.events.tenant(tenant)
        if record is None or not record.accepts(args.tenant):
            raise BotyardError("no such token")
        admin.events.change_tenant(tenant, lambda t: t.revoke(digest(args.tenant), default_actor()))
        print(f"revoked a token of {tenant}", file=sys.stderr)
    return 0


def add_token_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("tokens", help="issue, list or revoke a tenant's credentials (HTTP API token and NATS nkey)")
    p.add_argument("action", choices=["issue", "revoke", "list"])
    p.add_argument("tenant", metavar="TENANT|TOKEN", help="issue/list: the tenant; revoke: TENANT NAME, or the HTTP token")
    p.add_argument("name_to_revoke", nargs="?", metavar="NAME", help="revoke: the name of the credentials to revoke")
    p.add_argument("--name", help="issue: what the credentials are for (default: default)")
    p.add_argument("--out", help="issue: where to write the NATS seed file (default: <data_dir>/creds/TENANT-NAME.nk)")
    p.set_defaults(func=cmd_tokens)
    return p
