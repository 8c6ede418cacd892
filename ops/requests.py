"""The requests of the admin operations, as pydantic models shared by both ways in: the
HTTP API (:mod:`botyard.ops.web.http`: bodies and query parameters, read as lax as JSON
APIs are: ``"5"`` is 5) and the NATS admin subjects (:func:`botyard.ops.admin.handle`: the
same models read strictly, with ``tenant`` and ``bot`` in the body; a mistyped field is
refused, never coerced). Either way a refused request is ``invalid_request`` naming the field
(:func:`refusal`).
"""

from __future__ import annotations

from typing import Annotated, Any, Sequence

from pydantic import BaseModel, ConfigDict, Field

from botyard.events.bot import PRODUCTION
from botyard.ops.errors import AdminError
from botyard.protocol import MAX_CONVERSATION_ID

NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
"""Tenants, bots and aliases (:data:`botyard.protocol.NAME_RE`). pydantic matches it with the
Rust regex engine, where ``$`` is the very end (``"staging\\n"`` is refused); Python's ``re``
would need ``\\Z`` there."""
PAGE, MAX_PAGE = 1000, 10_000
"""Turns per export page: by default, and at most (the README's protocol section)."""
MAX_CHANGES = 10_000
"""The most changes a what-if lists."""

Name = Annotated[str, Field(pattern=NAME)]
Ref = Annotated[str, Field(min_length=1, description="id, unique id prefix (6+ hex digits) or alias")]
ConversationId = Annotated[str, Field(min_length=1, max_length=MAX_CONVERSATION_ID)]
Seconds = Annotated[float | None, Field(allow_inf_nan=False, description="epoch seconds")]


def refusal(errors: Sequence[Any], skip: int = 0) -> AdminError:
    """``invalid_request`` for pydantic's ``errors()``, naming the first one's field (its
    location without the first ``skip`` parts: HTTP's ``body``, ``query``, ``path``)."""
    first = errors[0] if errors else {}
    field = ".".join(str(x) for x in tuple(first.get("loc", ()))[skip:])
    return AdminError("invalid_request", f"{field or 'request'}: {first.get('msg', 'invalid')}", field=field)


# -- what HTTP and NATS share -------------------------------------------------------------


class PromoteBody(BaseModel):
    snapshot: Ref
    alias: Name = PRODUCTION
    reason: str = ""
    gate: bool = Field(False, description="replay the bot's recent turns first; refuse a worse model")
    force: bool = Field(False, description="with gate or tests: promote even if refused (recorded)")
    tests: list[Any] | dict[str, Any] | None = Field(
        None, description="conversation tests to pass first: their list of conversations, or {conversations: [...]}",
    )


class RollbackBody(BaseModel):
    alias: Name = PRODUCTION
    to: str | None = Field(None, min_length=1, description="an earlier target of the alias")
    reason: str = ""


class WhatIfBody(BaseModel):
    snapshot: Ref
    conversation_id: ConversationId | None = None
    since: Seconds = None
    until: Seconds = None
    last: int | None = Field(None, ge=1)
    max_changes: int = Field(100, ge=0, le=MAX_CHANGES)


class LabelBody(BaseModel):
    conversation_id: ConversationId
    turn: int = Field(ge=1)
    intent: str = Field(min_length=1, max_length=128)


class ConversationTestsBody(BaseModel):
    """``POST .../tests``: the conversations are validated by :mod:`botyard.ops.conversation_tests`
    (every problem at once, ``invalid_conversation_tests``), not here."""

    conversations: Any = Field(description="the conversations, as in a tests file (docs/testing.md)")
    snapshot: Ref | None = Field(None, description="the snapshot to test (default: the one alias names)")
    alias: Name | None = Field(None, description="test the snapshot this alias names (default: production)")


class TranscriptQuery(BaseModel):
    at: int | None = Field(None, ge=0, description="the turn number whose state to show (0: before the first)")


class ExportQuery(BaseModel):
    since: Seconds = None
    until: Seconds = None
    after: int = Field(0, ge=0, description="offset of the page's first turn")
    limit: int = Field(PAGE, ge=1, le=MAX_PAGE, description="turns per page")


class PageQuery(BaseModel):
    """Paging of a list in a NATS admin reply (``replay``'s turns, ``whatif``'s changes,
    ``list``'s snapshots, ``log``'s moves, ``labels``): each page holds as many items as
    fit the server's ``max_payload``, and the reply's ``next`` is the next page's ``after``."""

    after: int = Field(0, ge=0, description="items to skip: the previous page's next (replay: a turn number)")
    limit: int | None = Field(None, ge=1, le=MAX_PAGE, description="items per page, at most (default: as many as fit)")


class DiffQuery(BaseModel):
    a: Ref
    b: Ref


# -- NATS: the same, strict, with the bot in the body --------------------------------------------


class BotRequest(BaseModel):
    """A ``botyard.admin.<verb>`` request about one bot. Each verb's request below is its shared
    model plus this one (the last base, so that ``tenant`` and ``bot`` come first)."""

    model_config = ConfigDict(strict=True)
    tenant: Name
    bot: Name


class Acting(BaseModel):
    actor: str = Field("nats", min_length=1, max_length=200)


class ShowRequest(BotRequest):
    snapshot: Ref


class DiffRequest(DiffQuery, BotRequest):
    pass


class ListRequest(PageQuery, BotRequest):
    """``list``, ``log`` and ``labels``."""


class TranscriptRequest(PageQuery, TranscriptQuery, BotRequest):
    conversation_id: ConversationId


class MessagesRequest(BotRequest):
    """``botyard.admin.messages``: a conversation's proactive messages after ``after`` (a seq)."""

    conversation_id: ConversationId
    after: int = Field(0, ge=0, description="the seq of the last message the client has (0: all)")


class WhatIfRequest(PageQuery, WhatIfBody, BotRequest):
    pass


class ExportRequest(ExportQuery, BotRequest):
    pass


class LabelRequest(Acting, LabelBody, BotRequest):
    pass


class PromoteRequest(Acting, PromoteBody, BotRequest):
    pass


class RollbackRequest(Acting, RollbackBody, BotRequest):
    pass


class GcRequest(BaseModel):
    model_config = ConfigDict(strict=True)
    tenant: Name | None = None
    bot: Name | None = None
    keep: int = Field(5, ge=0)
    dry_run: bool = False
