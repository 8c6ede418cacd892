"""What the CLI's subcommands share: the stores and admin they open, bot references, and
the printing of alias moves and gate verdicts."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any, Iterator

from botyard.errors import BotyardError
from botyard.events.bot import PRODUCTION
from botyard.ops import stores
from botyard.ops.admin import Admin, alias_notification
from botyard.ops.bus_auth import connect_options
from botyard.ops.config import Config


def known_nats_url(config: Config) -> str | None:
    if config.nats_url:
        return config.nats_url
    url_file = config.data_dir / "nats.url"
    return url_file.read_text().strip() if url_file.exists() else None


def _notifier(config: Config):
    url = known_nats_url(config)
    if not url:
        return None

    def notify(event) -> None:
        import nats

        async def go() -> None:
            nc = await nats.connect(url.split(","), connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False,
                                    **connect_options(config))
            try:
                await nc.publish(*alias_notification(event))
                await nc.flush(2)
            finally:
                await nc.close()

        asyncio.run(go())

    return notify


@contextlib.contextmanager
def admin_for(config: Config) -> Iterator[Admin]:
    events = stores.open_events(config)
    try:
        snapshots = stores.open_snapshots(config, known_nats_url(config))
        try:
            yield Admin(events, snapshots, notify=_notifier(config), gate=config.gate)
        finally:
            stores.close(snapshots)
    finally:
        events.close()


def bot_ref(ref: str) -> tuple[str, str]:
    parts = ref.split("/")
    if len(parts) != 2 or not all(parts):
        raise BotyardError(f"expected TENANT/BOT, got {ref!r}")
    return parts[0], parts[1]


def promote_after_training(admin: Admin, tenant: str, bot: str, snapshot_id: str, alias: str | None) -> dict | None:
    """``--promote ALIAS`` moves that alias; without it a bot's first snapshot becomes production."""
    aggregate = admin.events.bot(tenant, bot)
    current = aggregate.aliases if aggregate else {}
    if alias is None:
        if PRODUCTION in current:
            return None
        alias = PRODUCTION
    if current.get(alias) == snapshot_id:
        return None
    return admin.promote(tenant, bot, snapshot_id, alias=alias, reason="trained")


def when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def print_move(move: dict[str, Any]) -> None:
    print(
        f"{move['tenant']}/{move['bot']}@{move['alias']}: {(move['previous'] or '-')[:12]} -> {move['target'][:12]} "
        f"({move['kind']} by {move['actor']}{', ' + move['reason'] if move['reason'] else ''}; version {move['version']})"
    )


def print_gate(verdict: dict[str, Any]) -> None:
    r = verdict["report"]
    fr = r["fallback_rate"]
    lab = r["labelled"]
    print(f"replay gate: {'passed' if verdict['passed'] else 'REFUSED'} on the last {r['turns']} turns")
    print(f"  intent changed on {r['changed_intent']} turns ({r['changed_intent_share']:.1%})")
    if lab["turns"]:
        print(f"  labelled turns: {lab['turns']}, right before {lab['right_before']}, right after {lab['right_after']}")
    print(f"  fallback rate: {fr['before']:.1%} -> {fr['after']:.1%}")
    for reason in verdict["reasons"]:
        print(f"  refused: {reason}")
    for c in verdict["examples"][:5]:
        b, a = c["before"], c["after"]
        print(f"  e.g. {c['ref']}: {c['user_text']!r}: {b['intent']} -> {a['intent']}" + (f" (label {c['label']})" if c["label"] else ""))


def entities_text(entities: list[dict]) -> str:
    """`` · entity=value`` for each entity of a turn (chat and history print them)."""
    return "".join(f" · {e['entity']}={e['value']}" for e in entities)
