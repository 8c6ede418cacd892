"""The admin HTTP API (FastAPI, OpenAPI at ``/openapi.json``) and ``/metrics``, served by
each node on ``BOTYARD_HTTP_PORT``.

The same operations as the CLI and ``botyard.admin.*``, through the same :class:`Admin`.
Every ``/api`` call needs ``Authorization: Bearer <token>``: a tenant's token
(``botyard tokens issue TENANT``) reaches only that tenant's resources (403 elsewhere);
the operator token reaches all. Errors are JSON ``{"error": {"code", "message", ...}}``.
"""

from __future__ import annotations

import logging
import pathlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any, Callable

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from botyard.errors import BotyardError
from botyard.events.activity import Activity
from botyard.events.tenant import digest, new_token, token_tenant
from botyard.ops import conversation_test_runs as test_runs
from botyard.ops.admin import Admin, export_page
from botyard.ops.errors import AdminError
from botyard.ops.jobs import TrainingJobs
from botyard.ops.requests import (
    NAME,
    ConversationTestsBody,
    DiffQuery,
    ExportQuery,
    LabelBody,
    PromoteBody,
    RollbackBody,
    TranscriptQuery,
    WhatIfBody,
    refusal,
)
from botyard.ops.web import dashboard
from botyard.protocol import MAX_CONVERSATION_ID, NAME_RE

log = logging.getLogger(__name__)

STATUS = {
    "unauthorized": 401, "forbidden": 403, "invalid_request": 400, "malformed": 400,
    "gate_refused": 409, "alias_unchanged": 409, "no_history": 409, "not_in_history": 409, "quota_exceeded": 429,
    "ambiguous_snapshot": 409, "wrong_bot": 409, "corrupt_snapshot": 422, "internal": 500, "unavailable": 503,
}


def status_of(code: str) -> int:
    return 404 if code.startswith("unknown_") else STATUS.get(code, 400)


def error(exc: BotyardError) -> JSONResponse:
    """The error's response: ``{"error": exc.to_wire()}``, as on NATS, with the status its code implies."""
    return JSONResponse({"error": exc.to_wire()}, status_code=status_of(exc.code))


@dataclass(frozen=True, slots=True)
class Caller:
    tenant: str | None
    """The token's tenant; None for the operator."""

    def check(self, tenant: str) -> None:
        if self.tenant is not None and self.tenant != tenant:
            raise AdminError("forbidden", "this token belongs to another tenant")


# -- request bodies of the tokens' routes (the others are in botyard.ops.requests) -----------


class TokenBody(BaseModel):
    name: str = Field("", max_length=200, description="what the token is for")


class RevokeBody(BaseModel):
    token: str = Field(min_length=1, max_length=200)


def make_app(
    admin_for: Callable[[], Admin],
    metrics: Callable[[], bytes],
    operator_token: str,
    *,
    activity: Callable[[], Activity | None] = lambda: None,
    jobs: Callable[[], TrainingJobs | None] = lambda: None,
) -> FastAPI:
    """``admin_for`` gives the Admin to use (the node's); ``metrics`` renders ``/metrics``;
    ``activity`` and ``jobs`` give the dashboard's projection and the training jobs."""
    app = FastAPI(title="botyard admin API", version="1", description=__doc__)
    lock = threading.Lock()  # one Admin (one set of store connections) used by one request at a time

    @app.exception_handler(BotyardError)
    async def _botyard_error(_: Request, exc: BotyardError) -> JSONResponse:
        return error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(refusal(exc.errors(), skip=1))  # the location's first part: body, query or path

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("admin API request failed")
        return error(BotyardError(f"{type(exc).__name__}: {exc}"))

    def caller(authorization: str | None = Header(None, description="Bearer <token>")) -> Caller:
        token = (authorization or "").removeprefix("Bearer ").strip()
        if not token:
            raise AdminError("unauthorized", "send Authorization: Bearer <token>")
        if operator_token and token == operator_token:
            return Caller(None)
        tenant = token_tenant(token)
        if tenant is not None and NAME_RE.match(tenant):
            with lock:
                record = admin_for().events.tenant(tenant)
            if record is not None and record.accepts(token):
                return Caller(tenant)
        raise AdminError("unauthorized", "unknown or revoked token")

    def scoped(tenant: str = Path(pattern=NAME), who: Caller = Depends(caller)) -> str:
        who.check(tenant)
        return tenant

    def run(fn: Callable[[Admin], Any]) -> Any:
        with lock:
            return fn(admin_for())

    Bot = Path(pattern=NAME)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict:
        return {"ok": True, "at": time.time()}

    @app.get("/metrics", tags=["ops"], response_class=Response)
    def prometheus() -> Response:
        return Response(metrics(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/api/v1/tenants/{tenant}/bots", tags=["bots"])
    def bots(tenant: str = Depends(scoped)) -> dict:
        def go(a: Admin) -> dict:
            names = sorted({i.bot for i in a.snapshots.list(tenant)} | {b for t, b in a.events.bot_refs() if t == tenant})
            out = []
            for name in names:
                aggregate = a.events.bot(tenant, name)
                out.append({"bot": name, "aliases": dict(aggregate.aliases) if aggregate else {}})
            return {"tenant": tenant, "bots": out}

        return run(go)

    base = "/api/v1/tenants/{tenant}/bots/{bot}"

    @app.get(base + "/snapshots", tags=["snapshots"])
    def snapshots(tenant: str = Depends(scoped), bot: str = Bot) -> dict:
        return run(lambda a: a.list(tenant, bot))

    @app.get(base + "/snapshots/{ref}", tags=["snapshots"])
    def snapshot(ref: str, tenant: str = Depends(scoped), bot: str = Bot) -> dict:
        return run(lambda a: a.show(tenant, bot, ref))

    @app.get(base + "/log", tags=["snapshots"])
    def alias_log(tenant: str = Depends(scoped), bot: str = Bot) -> dict:
        return run(lambda a: a.log(tenant, bot))

    @app.get(base + "/diff", tags=["snapshots"])
    def diff(q: Annotated[DiffQuery, Query()], tenant: str = Depends(scoped), bot: str = Bot) -> dict:
        return run(lambda adm: adm.diff(tenant, bot, q.a, q.b))

    @app.post(base + "/promote", tags=["snapshots"])
    def promote(body: PromoteBody, tenant: str = Depends(scoped), bot: str = Bot) -> dict:
        return run(lambda a: a.promote(
            tenant, bot, body.snapshot, alias=body.alias, reason=body.reason, gate=body.gate, force=body.force,
            actor="http", tests=body.tests,
        ))

    @app.post(base + "/rollback", tags=["snapshots"])
    def rollback(body: RollbackBody, tenant: str = Depends(scoped), bot: str = Bot) -> dict:
        return run(lambda a: a.rollback(tenant, bot, alias=body.alias, to=body.to, reason=body.reason, actor="http"))

    @app.get(base + "/conversations/{conversation_id}", tags=["conversations"])
    def transcript(
        q: Annotated[TranscriptQuery, Query()], conversation_id: str = Path(min_length=1, max_length=MAX_CONVERSATION_ID),
        tenant: str = Depends(scoped), bot: str = Bot,
    ) -> dict:
        return run(lambda a: a.replay.transcript(tenant, bot, conversation_id, at=q.at))

    @app.post(base + "/whatif", tags=["conversations"])
    def whatif(body: WhatIfBody, tenant: str = Depends(scoped), bot: str = Bot) -> dict:
        return run(lambda a: a.whatif(
            tenant, bot, body.snapshot, conversation_id=body.conversation_id, since=body.since, until=body.until,
            last=body.last, max_changes=body.max_changes,
        ))

    @app.post(base + "/tests", tags=["conversations"])
    def conversation_tests(body: ConversationTestsBody, tenant: str = Depends(scoped), bot: str = Bot) -> dict:
        """Play conversation tests on a snapshot of the bot (docs/testing.md); failed turns are in the result, not errors."""

        def go(a: Admin) -> dict:
            snapshot = test_runs.snapshot_for(a, tenant, bot, body.snapshot, body.alias, train_hint="train it first (POST .../train)")
            return test_runs.run_on(a, tenant, bot, snapshot, body.conversations).to_dict()

        return run(go)

    @app.get(base + "/labels", tags=["labels"])
    def labels(tenant: str = Depends(scoped), bot: str = Bot) -> dict:
        return {"tenant": tenant, "bot": bot, "labels": run(lambda a: a.replay.labels(tenant, bot))}

    @app.post(base + "/labels", tags=["labels"])
    def label(body: LabelBody, tenant: str = Depends(scoped), bot: str = Bot) -> dict:
        return run(lambda a: a.label(tenant, bot, body.conversation_id, body.turn, body.intent, actor="http"))

    @app.get(base + "/turns", tags=["conversations"])
    def turns(q: Annotated[ExportQuery, Query()], tenant: str = Depends(scoped), bot: str = Bot) -> dict:
        return run(lambda a: export_page(a, tenant, bot, q))

    def operator(tenant: str = Path(pattern=NAME), who: Caller = Depends(caller)) -> str:
        if who.tenant is not None:
            raise AdminError("forbidden", "only the operator token issues and revokes tenants' tokens")
        return tenant

    @app.post("/api/v1/tenants/{tenant}/tokens", tags=["tenants"])
    def issue_token(body: TokenBody, tenant: str = Depends(operator)) -> dict:
        """A new token of the tenant (shown once; only its SHA-256 is recorded, as ``Tenant.TokenIssued``)."""
        token = new_token(tenant)
        run(lambda a: a.events.change_tenant(tenant, lambda t: t.issue(digest(token), body.name, "http")))
        return {"tenant": tenant, "token": token, "name": body.name}

    @app.post("/api/v1/tenants/{tenant}/tokens/revoke", tags=["tenants"])
    def revoke_token(body: RevokeBody, tenant: str = Depends(operator)) -> dict:
        def go(a: Admin) -> dict:
            record = a.events.tenant(tenant)
            if token_tenant(body.token) != tenant or record is None or not record.accepts(body.token):
                raise AdminError("unknown_token", f"no live token of tenant {tenant} matches")
            a.events.change_tenant(tenant, lambda t: t.revoke(digest(body.token), "http"))
            return {"tenant": tenant, "revoked": True}

        return run(go)

    dashboard.add_routes(app, scoped=scoped, caller=caller, run=run, activity=activity, jobs=jobs)
    return app


def operator_token(configured: str | None, data_dir: pathlib.Path) -> str:
    """The operator token: the configured one, else the one kept in ``<data_dir>/operator.token``
    (made on first use, readable by its owner only)."""
    if configured:
        return configured
    token_file = data_dir / "operator.token"
    if not token_file.exists():
        token_file.touch(mode=0o600)
        token_file.write_text(secrets.token_urlsafe(32) + "\n")
    return token_file.read_text().strip()


class HttpServer:
    """uvicorn in a daemon thread; ``url`` once it listens."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
        self.server.install_signal_handlers = lambda: None  # the node owns signals
        self.thread = threading.Thread(target=self.server.run, name="http", daemon=True)
        self.url: str | None = None

    def start(self, timeout: float = 10.0) -> "HttpServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise BotyardError("the admin HTTP server did not start (is the port taken?)")
            time.sleep(0.01)
        sock = self.server.servers[0].sockets[0].getsockname()
        self.url = f"http://{sock[0]}:{sock[1]}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
