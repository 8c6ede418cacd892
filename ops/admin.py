"""Administration of bots' snapshots and aliases: the one implementation behind the CLI
(``botyard snapshots ...``) and the NATS admin subjects (``botyard.admin.*``).

Every answer is a plain dict (JSON- and msgpack-safe). Errors are botyard errors with a
stable ``code``: ``unknown_bot``, ``unknown_snapshot``, ``ambiguous_snapshot``,
``wrong_bot``, ``corrupt_snapshot``, ``unknown_alias``, ``no_history``,
``not_in_history``, ``alias_unchanged``, ``invalid_request``. A refused request changes
nothing.
"""

from __future__ import annotations

import getpass
import logging
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from botyard.actors.quotas import QUOTA_EXCEEDED, Quotas
from botyard.events.bot import PRODUCTION, Bot
from botyard.events.errors import UnknownBot
from botyard.events.store import EventStore
from botyard.events.turns import conversation_messages
from botyard.models.languages import DEFAULT as DEFAULT_LANGUAGE
from botyard.ops import conversation_test_runs as test_runs
from botyard.ops import requests
from botyard.ops.errors import AdminError
from botyard.ops.gate import GateLimits, gate_summary
from botyard.ops.paging import Budget
from botyard.ops.replay import Replay, known_intents
from botyard.ops.snapshot_diff import intents_of, manifest_diff
from botyard.protocol import alias_subject, check_name, encode_body
from botyard.snapshots.errors import SnapshotCorrupt, SnapshotNotFound
from botyard.snapshots.store import SnapshotInfo, SnapshotStore

log = logging.getLogger(__name__)

MIN_PREFIX = 6
Notify = Callable[[Bot.AliasMoved], None]
"""Called with the event after an alias move is committed."""


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def move_to_dict(e: Bot.AliasMoved) -> dict[str, Any]:
    return {
        "tenant": e.tenant, "bot": e.bot, "alias": e.alias, "previous": e.previous, "target": e.target,
        "kind": e.kind, "actor": e.actor, "reason": e.reason, "version": e.originator_version,
        "at": e.timestamp.timestamp(),
    }


def alias_notification(e: Bot.AliasMoved) -> tuple[str, bytes]:
    """The NATS message that tells every node of a committed move (subject, msgpack body)."""
    body = {"tenant": e.tenant, "bot": e.bot, "alias": e.alias, "target": e.target, "version": e.originator_version}
    return alias_subject(e.tenant, e.bot), encode_body(body, False)


class Admin:
    def __init__(
        self,
        events: EventStore,
        snapshots: SnapshotStore,
        *,
        notify: Notify | None = None,
        gate: GateLimits = GateLimits(),
        max_reply_bytes: int | Callable[[], int] | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        self.events = events
        self.quotas = quotas or Quotas()
        """The tenants' bots and snapshot bytes quotas (none for the CLI: an operator's tool)."""
        self.snapshots = snapshots
        self.max_reply_bytes = max_reply_bytes
        """The most bytes one NATS reply may take (the connection's ``max_payload``, or a
        callable reading it now); None: no limit. Paged verbs fill each page up to it."""
        self.notify = notify
        self.gate_limits = gate
        self.replay = Replay(events, snapshots)

    def reply_budget(self, as_json: bool | None = None) -> Budget:
        """The byte budget of one NATS reply (``as_json`` None: it must fit either encoding)."""
        limit = self.max_reply_bytes() if callable(self.max_reply_bytes) else self.max_reply_bytes
        return Budget(limit, as_json)

    # -- lookups -----------------------------------------------------------------------------

    def _bot(self, tenant: str, bot: str) -> Bot:
        found = self.events.bot(tenant, bot)
        if found is None:
            raise UnknownBot(tenant, bot)
        return found

    def resolve(self, tenant: str, bot: str, ref: str) -> SnapshotInfo:
        """A snapshot of this bot named by full id, unique prefix (≥ 6 hex digits), or alias."""
        if not isinstance(ref, str) or not ref:
            raise AdminError("invalid_request", "a snapshot id, id prefix or alias is required", field="snapshot")
        aggregate = self.events.bot(tenant, bot)
        if aggregate is not None and ref in aggregate.aliases:
            ref = aggregate.aliases[ref]
        infos = self.snapshots.list(tenant, bot)
        matches = [i for i in infos if i.id == ref] or (
            [i for i in infos if i.id.startswith(ref)] if len(ref) >= MIN_PREFIX else []
        )
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise AdminError("ambiguous_snapshot", f"{ref!r} matches {len(matches)} snapshots of {tenant}/{bot}", snapshot=ref)
        try:
            other = self.snapshots.info(ref)
        except SnapshotNotFound:
            if not infos and aggregate is None:
                raise UnknownBot(tenant, bot) from None
            raise SnapshotNotFound(ref) from None
        if other.tenant != tenant:  # another tenant's snapshot: as if it did not exist (nothing of theirs is named)
            raise SnapshotNotFound(ref)
        raise AdminError("wrong_bot", f"snapshot {ref} belongs to bot {other.bot}, not {bot}", snapshot=ref)

    # -- reading ----------------------------------------------------------------------------

    def list(self, tenant: str, bot: str) -> dict[str, Any]:
        aggregate = self.events.bot(tenant, bot)
        infos = self.snapshots.list(tenant, bot)
        if aggregate is None and not infos:
            raise UnknownBot(tenant, bot)
        aliases = aggregate.aliases if aggregate else {}
        return {
            "tenant": tenant, "bot": bot, "aliases": dict(aliases),
            "snapshots": [
                {**i.to_dict(), "aliases": sorted(a for a, s in aliases.items() if s == i.id)} for i in infos
            ],
        }

    def show(self, tenant: str, bot: str, ref: str) -> dict[str, Any]:
        info = self.resolve(tenant, bot, ref)
        manifest = dict(self.snapshots.load(info.id).manifest)
        definition = manifest.pop("definition", {}) or {}
        manifest["intents"] = sorted(intents_of(definition))
        manifest["language"] = definition.get("language", DEFAULT_LANGUAGE)  # an English bot's definition omits it
        return {"snapshot": info.to_dict(), "manifest": manifest}

    def log(self, tenant: str, bot: str) -> dict[str, Any]:
        aggregate = self._bot(tenant, bot)
        moves = [e for e in self.events.bot_events(tenant, bot) if isinstance(e, Bot.AliasMoved)]
        return {**aggregate.state(), "moves": [move_to_dict(e) for e in moves]}

    def diff(self, tenant: str, bot: str, ref_a: str, ref_b: str) -> dict[str, Any]:
        a, b = (self.resolve(tenant, bot, r).id for r in (ref_a, ref_b))
        return {"a": a, "b": b, **manifest_diff(self.snapshots.load(a).manifest, self.snapshots.load(b).manifest)}

    # -- changing aliases ---------------------------------------------------------------------

    def promote(
        self,
        tenant: str,
        bot: str,
        ref: str,
        *,
        alias: str = PRODUCTION,
        actor: str = "",
        reason: str = "",
        gate: bool = False,
        force: bool = False,
        tests: Any = None,
    ) -> dict[str, Any]:
        """Point ``alias`` at a snapshot, after verifying the snapshot's content against its id.

        With ``gate`` the bot's recent turns are first replayed through the snapshot; a
        verdict against it refuses the move (``gate_refused``) unless ``force``. The verdict's
        one-line summary is added to the move's reason either way.

        With ``tests`` (conversation tests: parsed, or their mapping or list of conversations;
        docs/testing.md) they are played on the snapshot too, and any failed turn refuses the
        move the same way. The verdict is then ``{passed, reasons, tests}``, ``tests`` holding
        the tests' summary and first failures, and with ``gate`` also ``replay``: the replay
        gate's verdict (without ``tests``, the verdict is the replay gate's, as before).
        """
        check_name("alias", alias)
        info = self.resolve(tenant, bot, ref)
        self.check_quota(tenant, bot)
        self._verify(info.id, alias, "promote")  # SnapshotCorrupt: a bad snapshot never gets an alias
        verdict = None
        if gate or tests is not None:
            verdict, summary = self._gate(tenant, bot, info.id, gate, tests)
            summary += " (forced)" if force and not verdict["passed"] else ""
            if not verdict["passed"] and not force:
                raise AdminError("gate_refused", f"{summary}: " + "; ".join(verdict["reasons"]), gate=verdict)
            reason = f"{reason}; {summary}" if reason else summary
        aggregate = self.events.change_bot(
            tenant, bot, lambda b: b.promote(alias, info.id, actor=actor or default_actor(), reason=reason)
        )
        moved = self._moved(aggregate)
        return {**moved, "gate": verdict} if verdict is not None else moved

    def check_quota(self, tenant: str, bot: str) -> None:
        """``quota_exceeded`` when the tenant is at its bots quota and ``bot`` would be one
        more, or over its snapshot bytes (``quota``, ``limit``, ``used``)."""
        quota = self.quotas.of(tenant)
        if quota.bots:
            bots = {b for t, b in self.events.bot_refs() if t == tenant}
            if bot not in bots and len(bots) >= quota.bots:
                raise AdminError(QUOTA_EXCEEDED, f"tenant {tenant} has {len(bots)} bots, its quota", quota="bots",
                                 limit=quota.bots, used=len(bots))
        if quota.snapshot_bytes:
            used = sum(i.size for i in self.snapshots.list(tenant))
            if used > quota.snapshot_bytes:
                raise AdminError(QUOTA_EXCEEDED, f"tenant {tenant}'s snapshots take {used} bytes, over its quota of "
                                 f"{quota.snapshot_bytes}: remove some (gc)", quota="snapshot_bytes", limit=quota.snapshot_bytes,
                                 used=used)

    def _gate(self, tenant: str, bot: str, snapshot_id: str, replay: bool, tests: Any) -> tuple[dict[str, Any], str]:
        """The promotion gate's verdict on a snapshot, and its one-line summary."""
        replayed = self.replay.gate(tenant, bot, snapshot_id, self.gate_limits) if replay else None
        if tests is None:
            assert replayed is not None
            return replayed, gate_summary(replayed)
        checked = test_runs.verdict(test_runs.run_on(self, tenant, bot, snapshot_id, tests))
        parts = [replayed] if replayed is not None else []
        verdict = {
            "passed": checked["passed"] and all(p["passed"] for p in parts),
            "reasons": [r for p in parts for r in p["reasons"]] + checked["reasons"],
            "tests": checked, **({"replay": replayed} if replayed is not None else {}),
        }
        return verdict, "; ".join([*(gate_summary(p) for p in parts), test_runs.verdict_line(checked)])

    # -- bot definitions ---------------------------------------------------------------------------

    def define(self, tenant: str, bot: str, data: Any, *, actor: str = "") -> dict[str, Any]:
        """Validate a bot file's mapping (tenant and bot default to the path's) and record it
        as ``Bot.DefinitionSaved``; an identical one records nothing (``changed`` false)."""
        from botyard.dialogue.spec import parse_dialogue
        from botyard.models.definition import parse_bot

        if not isinstance(data, dict):
            raise AdminError("invalid_definition", "a bot definition is a mapping with intents", field="definition")
        data = {**data, "tenant": data.get("tenant", tenant), "bot": data.get("bot", bot)}
        if (data["tenant"], data["bot"]) != (tenant, bot):
            raise AdminError(
                "invalid_definition", f"the definition names {data['tenant']}/{data['bot']}, not {tenant}/{bot}",
                field="tenant",
            )
        parsed = parse_bot(data, source=f"{tenant}/{bot}")  # DefinitionError: invalid_definition, with the field
        parse_dialogue(parsed, source=f"{tenant}/{bot}")  # the dialogue section: every problem at once
        changed: list[bool] = []
        self.events.change_bot(
            tenant, bot, lambda b: changed.append(b.save_definition(data, parsed.content_hash(), actor=actor or default_actor()))
        )
        return {**self.definition(tenant, bot), "changed": changed[-1]}

    def definition(self, tenant: str, bot: str) -> dict[str, Any]:
        aggregate = self.events.bot(tenant, bot)
        if aggregate is None or aggregate.definition is None:
            raise AdminError("unknown_definition", f"{tenant}/{bot} has no saved definition", tenant=tenant, bot=bot)
        return {
            "tenant": tenant, "bot": bot, "definition": aggregate.definition,
            "definition_hash": aggregate.definition_hash, "version": aggregate.version,
        }

    # -- replay ----------------------------------------------------------------------------------

    def whatif(self, tenant: str, bot: str, ref: str, **window: Any) -> dict[str, Any]:
        return self.replay.whatif(tenant, bot, self.resolve(tenant, bot, ref).id, **window)

    def label(self, tenant: str, bot: str, conversation_id: str, turn: int, intent: str, *, actor: str = "") -> dict[str, Any]:
        """Record the right intent of one recorded turn (checked against the bot's production intents)."""
        aggregate = self.events.bot(tenant, bot)
        target = aggregate.aliases.get(PRODUCTION) if aggregate else None
        if target is None:
            raise UnknownBot(tenant, bot)
        intents = known_intents(self.replay.predictor(target))
        return self.replay.label(
            tenant, bot, conversation_id, turn, intent, actor=actor or default_actor(), known_intents=intents
        )

    def rollback(
        self, tenant: str, bot: str, *, alias: str = PRODUCTION, to: str | None = None, actor: str = "", reason: str = ""
    ) -> dict[str, Any]:
        """Return ``alias`` to its previous target, or to ``to`` (one of its earlier targets).

        The target's bytes are verified against its id before the move is recorded, the
        previous target's too: a corrupt one is refused (``corrupt_snapshot``), never
        skipped for another. The target is the one the recorded state names when the move
        is saved (verified again if a concurrent move changed it)."""
        check_name("alias", alias)
        self._bot(tenant, bot)
        explicit = self.resolve(tenant, bot, to).id if to else None
        verified: set[str] = set()
        if explicit is not None:
            self._verify(explicit, alias, "rollback")
            verified.add(explicit)

        def move(b: Bot) -> None:
            stack = b.history.get(alias) or []
            target = explicit or (stack[-1] if alias in b.aliases and stack else None)
            if target is not None and target not in verified:  # None: the command refuses with its own code
                self._verify(target, alias, "rollback")
                verified.add(target)
            b.rollback(alias, to=target, actor=actor or default_actor(), reason=reason)

        return self._moved(self.events.change_bot(tenant, bot, move))

    def _verify(self, snapshot_id: str, alias: str, kind: str) -> None:
        """Read the snapshot's bytes from the store and hash them against its id (every
        time: the store keeps no verdict); ``corrupt_snapshot`` names the alias and move refused."""
        try:
            self.snapshots.load(snapshot_id)
        except SnapshotCorrupt as exc:
            exc.fields.update(alias=alias, move=kind)
            raise

    def _moved(self, aggregate: Bot) -> dict[str, Any]:
        event = self.events.bot_events(aggregate.tenant, aggregate.bot)[-1]
        if self.notify is not None:
            try:
                self.notify(event)
            except Exception as exc:  # nodes also follow the event log: they catch up within a second
                log.warning("alias notification failed: %s", exc)
        return move_to_dict(event)

    # -- garbage collection ---------------------------------------------------------------------

    def gc(self, tenant: str | None = None, bot: str | None = None, *, keep: int = 5, dry_run: bool = False) -> dict[str, Any]:
        """Delete all but each bot's newest ``keep`` snapshots, never one an alias names or may roll back to."""
        if not isinstance(keep, int) or keep < 0:
            raise AdminError("invalid_request", "keep must be a whole number ≥ 0", field="keep")
        by_bot: dict[tuple[str, str], list[SnapshotInfo]] = {}
        for info in self.snapshots.list(tenant, bot):
            by_bot.setdefault((info.tenant, info.bot), []).append(info)
        deleted, kept = [], 0
        for (t, b), infos in by_bot.items():
            aggregate = self.events.bot(t, b)
            protected = aggregate.referenced() if aggregate else set()
            newest = {i.id for i in infos[-keep:]} if keep else set()
            for info in infos:
                if info.id in protected or info.id in newest:
                    kept += 1
                    continue
                if not dry_run:
                    self.snapshots.delete(info.id)
                deleted.append(info.id)
        return {"deleted": deleted, "kept": kept, "dry_run": dry_run}


# -- the NATS admin subjects ---------------------------------------------------------------------

VERBS = ("list", "show", "log", "promote", "rollback", "diff", "gc", "replay", "whatif", "label", "labels", "export",
         "messages")
REQUESTS: dict[str, type[BaseModel]] = {
    "list": requests.ListRequest, "log": requests.ListRequest, "labels": requests.ListRequest,
    "show": requests.ShowRequest, "diff": requests.DiffRequest, "gc": requests.GcRequest,
    "replay": requests.TranscriptRequest, "whatif": requests.WhatIfRequest, "export": requests.ExportRequest,
    "label": requests.LabelRequest, "promote": requests.PromoteRequest, "rollback": requests.RollbackRequest,
    "messages": requests.MessagesRequest,
}
"""Each verb's request model, shared with the HTTP API (:mod:`botyard.ops.requests`)."""


def handle(admin: Admin, verb: str, body: Any, *, as_json: bool | None = None) -> dict[str, Any]:
    """Run one ``botyard.admin.<verb>`` request body; raise a botyard error to refuse it.

    The body is validated strictly by the verb's model; a nil field counts as absent. The
    list-like verbs answer a page that fits ``admin.max_reply_bytes`` encoded as the reply
    will be (``as_json``; None: unknown, so the page fits both msgpack and JSON)."""
    if verb not in VERBS:
        raise AdminError("unknown_verb", f"no admin verb {verb!r}; known: {', '.join(VERBS)}", verb=verb)
    if not isinstance(body, dict):
        raise AdminError("invalid_request", f"request body must be a map, not {type(body).__name__}")
    try:
        r: Any = REQUESTS[verb].model_validate({k: v for k, v in body.items() if v is not None})
    except ValidationError as exc:
        raise requests.refusal(exc.errors()) from None
    if verb == "gc":
        return admin.gc(r.tenant, r.bot, keep=r.keep, dry_run=r.dry_run)
    tenant, bot = r.tenant, r.bot
    budget = admin.reply_budget(as_json)
    if verb == "list":
        return page_of(admin.list(tenant, bot), "snapshots", r, budget)
    if verb == "log":
        return page_of(admin.log(tenant, bot), "moves", r, budget)
    if verb == "show":
        return admin.show(tenant, bot, r.snapshot)
    if verb == "diff":
        return admin.diff(tenant, bot, r.a, r.b)
    if verb == "replay":
        return admin.replay.transcript(tenant, bot, r.conversation_id, at=r.at, after=r.after, limit=r.limit, budget=budget)
    if verb == "whatif":
        report = admin.replay.whatif_report(
            tenant, bot, admin.resolve(tenant, bot, r.snapshot).id, conversation_id=r.conversation_id, since=r.since,
            until=r.until, last=r.last, max_changes=r.max_changes,
        )
        return page_of(report, "changes", r, budget)
    if verb == "labels":
        return page_of({"tenant": tenant, "bot": bot, "labels": admin.replay.labels(tenant, bot)}, "labels", r, budget)
    if verb == "export":
        return export_page(admin, tenant, bot, r, budget=budget)
    if verb == "messages":
        found = conversation_messages(admin.events, tenant, bot, r.conversation_id, after=r.after)
        page, more = budget.fill({"conversation_id": r.conversation_id}, "messages", found)
        return {"conversation_id": r.conversation_id, "messages": page, "more": more}
    if verb == "label":
        return admin.label(tenant, bot, r.conversation_id, r.turn, r.intent, actor=r.actor)
    if verb == "promote":
        return admin.promote(
            tenant, bot, r.snapshot, alias=r.alias, gate=r.gate, force=r.force, actor=r.actor, reason=r.reason, tests=r.tests
        )
    return admin.rollback(tenant, bot, alias=r.alias, to=r.to, actor=r.actor, reason=r.reason)


def export_page(
    admin: Admin, tenant: str, bot: str, query: requests.ExportQuery, *, budget: Budget | None = None
) -> dict[str, Any]:
    """One page of the bot's recorded turns (``export``; HTTP ``GET .../turns``): from
    offset ``after``, at most ``limit`` turns and as many as fit ``budget``."""
    total, rows = admin.replay.export_rows(tenant, bot, since=query.since, until=query.until, after=query.after)
    page, _ = (budget or Budget()).fill({"total": total}, "turns", rows, limit=query.limit)
    end = query.after + len(page)
    return {"turns": page, "total": total, "next": end if end < total else None}


def page_of(result: dict[str, Any], key: str, query: Any, budget: Budget) -> dict[str, Any]:
    """``result`` with its list ``key`` cut to the page after offset ``query.after`` (at
    most ``query.limit`` items, as many as fit ``budget``), and ``next``: the offset of
    the next page, or None on the last. Without paging asked for or needed, the whole list."""
    after = query.after
    items = result[key]
    page, more = budget.fill({k: v for k, v in result.items() if k != key}, key, items[after:], limit=query.limit)
    return {**result, key: page, "next": after + len(page) if more else None}
