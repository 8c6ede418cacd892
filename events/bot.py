"""The Bot aggregate: where each of a bot's aliases points, and every move of them.

An alias (``production``, ``staging``, or any name a tenant adds) names a snapshot id.
Moving one is an ``AliasMoved`` event saying who moved it, from where, to where and
why; nodes follow these events to switch models. Each alias keeps the stack of its
earlier targets, so a rollback returns it to the one before, however often it moved.
Applying an event only changes fields: replay does no I/O.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from botyard.events.errors import AliasError

PRODUCTION = "production"
STAGING = "staging"


def bot_uuid(tenant: str, bot: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"botyard:bot:{tenant}/{bot}")


class Bot(Aggregate):
    TOPIC = "botyard:Bot"

    class Created(Aggregate.Created):
        """Never recorded (``Registered`` is the first event); named because with explicit topics the
        library wants a topic on every event class of the aggregate, this inherited one too."""

        TOPIC = "botyard:Bot.Created"

    class Registered(Aggregate.Created):
        """The bot's first event (stable name: ``Bot.Registered`` v1)."""

        TOPIC = "botyard:Bot.Registered"
        class_version = 1
        tenant: str
        bot: str

    class AliasMoved(Aggregate.Event):
        """An alias now names ``target`` (stable name: ``Bot.AliasMoved`` v1).

        ``tenant`` and ``bot`` repeat the aggregate's, so projections need no lookup.
        ``kind`` is ``promote`` (the old target is pushed on the alias's history) or
        ``rollback`` (the history is popped down to ``target``).
        """

        TOPIC = "botyard:Bot.AliasMoved"
        class_version = 1
        tenant: str
        bot: str
        alias: str
        previous: str | None
        target: str
        kind: str
        actor: str
        reason: str

    class DefinitionSaved(Aggregate.Event):
        """A new version of the bot file, validated (stable name: ``Bot.DefinitionSaved`` v1).

        ``definition`` is the mapping as the tenant wrote it (the bot file's format), so it
        can be edited and trained again; ``definition_hash`` is the parsed definition's
        content hash, the one snapshots record.
        """

        TOPIC = "botyard:Bot.DefinitionSaved"
        class_version = 1
        tenant: str
        bot: str
        definition: dict
        definition_hash: str
        actor: str

    @staticmethod
    def create_id(tenant: str, bot: str) -> UUID:
        return bot_uuid(tenant, bot)

    @event(Registered)
    def __init__(self, tenant: str, bot: str) -> None:
        self.tenant = tenant
        self.bot = bot
        self.aliases: dict[str, str] = {}
        self.history: dict[str, list[str]] = {}
        self.definition: dict | None = None
        self.definition_hash: str | None = None

    @event(AliasMoved)
    def _move(
        self, tenant: str, bot: str, alias: str, previous: str | None, target: str, kind: str, actor: str, reason: str
    ) -> None:
        stack = self.history.setdefault(alias, [])
        if kind == "rollback":
            while stack and stack.pop() != target:
                pass
        elif previous is not None:
            stack.append(previous)
        self.aliases[alias] = target

    @event(DefinitionSaved)
    def _define(self, tenant: str, bot: str, definition: dict, definition_hash: str, actor: str) -> None:
        self.definition = definition
        self.definition_hash = definition_hash

    # -- commands (validate, then record) -----------------------------------------------------

    def save_definition(self, definition: dict, definition_hash: str, *, actor: str) -> bool:
        """Record a validated bot file; False (and nothing recorded) when it is unchanged."""
        if definition_hash == self.definition_hash and definition == self.definition:
            return False
        self._define(self.tenant, self.bot, definition, definition_hash, actor)
        return True

    def promote(self, alias: str, target: str, *, actor: str, reason: str = "") -> None:
        current = self.aliases.get(alias)
        if current == target:
            raise AliasError("alias_unchanged", f"{self.ref}@{alias} already names {target}", alias=alias, snapshot=target)
        self._move(self.tenant, self.bot, alias, current, target, "promote", actor, reason)

    def rollback(self, alias: str, *, to: str | None = None, actor: str, reason: str = "") -> None:
        if alias not in self.aliases:
            raise AliasError("unknown_alias", f"{self.ref} has no alias {alias!r}", alias=alias)
        stack = self.history.get(alias, [])
        if not stack:
            raise AliasError(
                "no_history", f"{self.ref}@{alias} has no earlier target to roll back to", alias=alias
            )
        target = to or stack[-1]
        if target not in stack:
            raise AliasError(
                "not_in_history",
                f"{target} was never an earlier target of {self.ref}@{alias}; promote it instead",
                alias=alias, snapshot=target,
            )
        self._move(self.tenant, self.bot, alias, self.aliases[alias], target, "rollback", actor, reason)

    @property
    def ref(self) -> str:
        return f"{self.tenant}/{self.bot}"

    def referenced(self) -> set[str]:
        """Every snapshot an alias names now or may roll back to."""
        return set(self.aliases.values()) | {s for stack in self.history.values() for s in stack}

    def state(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant, "bot": self.bot, "version": self.version,
            "aliases": dict(self.aliases), "history": {k: list(v) for k, v in self.history.items()},
        }
