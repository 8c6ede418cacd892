"""``botyard.Client``: talk to bots from Python over NATS.

```python
async with await Client.connect("nats://127.0.0.1:4222") as client:
    reply = await client.say("acme-shop", "support", "c-42", "where is my order?")
    print(reply.text, reply.intent, reply.confidence)

# with a tenant's credential (``botyard tokens issue acme-shop``), on a bus with authorization:
async with await Client.connect(url, tenant="acme-shop", credentials=".botyard/creds/acme-shop-default.nk") as client:
    ...   # turns, and admin verbs on botyard.admin.acme-shop.<verb>
```
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, AsyncIterator

import msgpack
import nats
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from botyard.errors import TurnError
from botyard.protocol import admin_subject, turn_subject


@dataclass(frozen=True, slots=True)
class Reply:
    """The reply to a turn, typed: the fields of ``botyard.turn_record.reply_body``."""

    conversation_id: str
    turn: int
    text: str
    intent: str
    confidence: float
    snapshot: str
    fallback: bool = False
    fallback_reason: str | None = None
    """Why the turn fell back: ``out_of_scope_class``, ``no_known_word``, ``low_score`` or
    ``low_confidence`` (nil when it did not; for a retried turn whose text now gets another answer)."""
    score: float | None = None
    """The in-scope score: how much the text resembles the bot's examples (nil without one)."""
    turn_id: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    """``{entity, value, start, end, extractor, confidence}`` per entity in the user's text."""
    node: str = ""
    """The node that answered."""
    slots: dict[str, Any] = field(default_factory=dict)
    """The conversation's slots after the turn."""
    form: str | None = None
    """The active form (an intent's name), if any."""
    asked: str | None = None
    """The slot the active form asked for and waits for."""
    handed_off: bool = False
    """The conversation is with a person: ``text`` is an agent's answer (``agent`` names them), or empty."""
    agent: str | None = None

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> "Reply":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in body.items() if k in names})


class Client:
    """A thin, typed wrapper over a nats-py connection."""

    def __init__(self, nc: nats.NATS, *, timeout: float = 5.0, owns_connection: bool = False, tenant: str | None = None) -> None:
        self.nc = nc
        self.timeout = timeout
        self._owns = owns_connection
        self.tenant = tenant
        """Set: admin requests go to ``botyard.admin.<tenant>.<verb>`` (what a tenant's credential may use)."""

    @classmethod
    async def connect(
        cls, url: str = "nats://127.0.0.1:4222", *, timeout: float = 5.0, tenant: str | None = None,
        credentials: str | Path | None = None, **options: Any,
    ) -> "Client":
        """Connect; with ``credentials`` (an nkey seed file) as that user, and with ``tenant``
        in that tenant's inbox (``_INBOX_<tenant>``) and admin subjects."""
        if credentials is not None:
            options.setdefault("nkeys_seed_str", Path(credentials).read_text().strip())
        if tenant is not None:
            options.setdefault("inbox_prefix", f"_INBOX_{tenant}")
        nc = await nats.connect(url, **options)
        return cls(nc, timeout=timeout, owns_connection=True, tenant=tenant)

    async def say(
        self,
        tenant: str,
        bot: str,
        conversation_id: str,
        text: str,
        *,
        turn_id: str | None = None,
        alias: str | None = None,
    ) -> Reply:
        """Send one user turn and return the bot's reply; raise :class:`TurnError` on refusal.

        ``alias`` picks the snapshot (e.g. ``staging``); the default is ``production``.
        """
        body = {"conversation_id": conversation_id, "text": text, "turn_id": turn_id or uuid.uuid4().hex}
        if alias:
            body["alias"] = alias
        return Reply.from_wire(await self._request(turn_subject(tenant, bot), body))

    async def admin(self, verb: str, **fields: Any) -> dict[str, Any]:
        """One ``botyard.admin.<verb>`` request (``list``, ``promote``, ``rollback``, ...).

        Returns the result map; raises :class:`TurnError` with the error's code on refusal.
        """
        subject = admin_subject(verb, self.tenant)
        if self.tenant:
            fields.pop("tenant", None)
        return (await self._request(subject, fields))["result"]

    async def pages(self, verb: str, key: str, **fields: Any) -> AsyncIterator[dict[str, Any]]:
        """Every item of a paged admin reply's list ``key``, page after page: each request
        carries the previous reply's ``next`` as ``after`` until ``next`` is nil
        (``pages("labels", "labels", tenant=..., bot=...)``; docs/protocol.md, "Paging")."""
        after = fields.pop("after", 0) or 0
        while True:
            page = await self.admin(verb, **fields, after=after)
            for item in page[key]:
                yield item
            after = page.get("next")
            if after is None:
                return

    def export_all(
        self,
        tenant: str,
        bot: str,
        *,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every recorded turn of a bot in ``[since, until)``, in recording order, read a page
        at a time (``async for row in client.export_all("acme-shop", "support"): ...``).
        Each page is at most ``limit`` turns (the node's default otherwise) and always fits
        the NATS server's ``max_payload``."""
        options = {k: v for k, v in (("since", since), ("until", until), ("limit", limit)) if v is not None}
        return self.pages("export", "turns", tenant=tenant, bot=bot, **options)

    async def _request(self, subject: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            msg = await self.nc.request(subject, msgpack.packb(body, use_bin_type=True), timeout=self.timeout)
        except NoRespondersError:
            raise TurnError("no_responders", "no botyard node is serving this on this NATS") from None
        except NatsTimeoutError:
            raise TurnError("timeout", f"no reply within {self.timeout} s") from None
        reply = msgpack.unpackb(msg.data, raw=False)
        if "error" in reply:
            err = dict(reply["error"])
            raise TurnError(err.pop("code", "internal"), err.pop("message", ""), **err)
        return reply

    async def close(self) -> None:
        if self._owns and not self.nc.is_closed:
            await self.nc.drain()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
