"""The dashboard: its page (``/dashboard/``, static files shipped in the package, nothing
from a CDN) and the API routes it reads, which any client may use too.

Charts, conversations and the review queue come from :class:`Activity`, a projection of
the event store; bot definitions are ``Bot.DefinitionSaved`` events; training runs as a
job (:mod:`botyard.ops.jobs`). Every route is tenant-scoped like the rest of the API.
"""

from __future__ import annotations

import time
from pathlib import Path as FsPath
from typing import Any, Callable

import yaml
from fastapi import Depends, FastAPI, Path, Query
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, create_model

from botyard.events.activity import Activity
from botyard.events.turns import bot_turns
from botyard.ops.admin import Admin
from botyard.ops.errors import AdminError
from botyard.ops.jobs import TrainingJobs, TrainOptions
from botyard.ops.requests import NAME
from botyard.training.config import settings_problem, user_settings

STATIC = FsPath(__file__).resolve().parent / "static"


class DefinitionBody(BaseModel):
    definition: dict[str, Any] | None = Field(None, description="the bot file as a JSON object")
    yaml: str | None = Field(None, max_length=5_000_000, description="or the bot file as YAML text")


def _train_body() -> type[BaseModel]:
    """``POST .../train``'s body: each user setting of ``TrainConfig`` (absent: its default),
    then what follows training."""
    fields: dict[str, Any] = {}
    for s in user_settings():
        described = s.setting.describe()
        if s.type is bool:
            fields[s.name] = (bool, Field(False, description=described))
        else:
            limits = {"ge": s.setting.ge, "le": s.setting.le}
            fields[s.name] = (s.type | None, Field(None, description=f"{described} (default {s.default})", **limits))
    return create_model(
        "TrainBody",
        **fields,
        promote=(str | None, Field(None, pattern=NAME, description="alias to point at the new snapshot")),
        labels=(bool, Field(False, description="add the bot's labelled turns to its examples")),
    )


TrainBody = _train_body()


def add_routes(
    app: FastAPI,
    *,
    scoped: Callable[..., str],
    caller: Callable[..., Any],
    run: Callable[[Callable[[Admin], Any]], Any],
    activity: Callable[[], Activity | None],
    jobs: Callable[[], TrainingJobs | None],
) -> None:
    Bot = Path(pattern=NAME)
    base = "/api/v1/tenants/{tenant}/bots/{bot}"

    app.mount("/dashboard", StaticFiles(directory=STATIC, html=True), name="dashboard")

    def projection() -> Activity:
        found = activity()
        if found is None:
            raise AdminError("unavailable", "this node keeps no activity projection")
        return found

    @app.get("/api/v1/bots", tags=["dashboard"])
    def visible_bots(who=Depends(caller)) -> dict:
        """Every bot the token may see: with turns recorded, an alias, or a saved definition."""

        def go(a: Admin) -> dict:
            seen = {(b["tenant"], b["bot"]): b for b in projection().bots()}
            for tenant, name in a.events.bot_refs():
                seen.setdefault((tenant, name), {"tenant": tenant, "bot": name, "turns": 0, "last_at": None})
            return {"bots": [b for (t, _), b in sorted(seen.items()) if who.tenant in (None, t)]}

        return run(go)

    @app.get(base + "/stats", tags=["dashboard"])
    def stats(
        minutes: float = Query(10, gt=0, le=60), step: int = Query(5, ge=1, le=600),
        tenant: str = Depends(scoped), bot: str = Bot,
    ) -> dict:
        """Turns/s, latency p50/p99 (request received → answer ready to commit), fallback rate
        and mean confidence per point; intents in the window and in all; alias moves."""
        now = time.time()
        return run(lambda a: projection().stats(tenant, bot, since=now - minutes * 60, until=now + 1, step=step))

    @app.get(base + "/conversations", tags=["conversations"])
    def conversations(
        q: str | None = Query(None, min_length=1, max_length=200, description="text a user turn contains"),
        limit: int = Query(50, ge=1, le=1000), tenant: str = Depends(scoped), bot: str = Bot,
    ) -> dict:
        """The most recently active conversations; with ``q``, those with a matching user turn."""
        if q is None:
            return {"conversations": run(lambda a: projection().conversations(tenant, bot, limit=limit))}
        needle = q.casefold()

        def search(a: Admin) -> list[dict]:
            found: dict[str, dict] = {}
            for row in reversed(bot_turns(a.events, tenant, bot)):
                if needle in row.user_text.casefold():
                    entry = found.setdefault(row.conversation_id, {"conversation_id": row.conversation_id, "matches": []})
                    if len(entry["matches"]) < 5:
                        entry["matches"].append({"turn": row.turn, "user_text": row.user_text, "intent": row.intent})
                    if len(found) > limit:
                        break
            return list(found.values())[:limit]

        return {"conversations": run(search)}

    @app.get(base + "/review", tags=["labels"])
    def review(limit: int = Query(50, ge=1, le=500), tenant: str = Depends(scoped), bot: str = Bot) -> dict:
        """Unlabelled fallback and low-confidence turns, the least sure first."""
        return {"turns": run(lambda a: projection().review(tenant, bot, limit=limit))}

    @app.get(base + "/definition", tags=["bots"])
    def get_definition(tenant: str = Depends(scoped), bot: str = Bot) -> dict:
        return run(lambda a: a.definition(tenant, bot))

    @app.put(base + "/definition", tags=["bots"])
    def put_definition(body: DefinitionBody, tenant: str = Depends(scoped), bot: str = Bot) -> dict:
        """Upload or edit the bot file (validated; recorded as a ``Bot.DefinitionSaved`` event)."""
        if (body.definition is None) == (body.yaml is None):
            raise AdminError("invalid_request", "send exactly one of definition (an object) and yaml (text)", field="definition")
        data: Any = body.definition
        if body.yaml is not None:
            try:
                data = yaml.safe_load(body.yaml)
            except yaml.YAMLError as exc:
                raise AdminError("invalid_definition", f"not valid YAML: {exc}", field="yaml") from None
        run(lambda a: a.check_quota(tenant, bot))
        return run(lambda a: a.define(tenant, bot, data, actor="http"))

    @app.post(base + "/train", tags=["bots"], status_code=202)
    def train(body: TrainBody, tenant: str = Depends(scoped), bot: str = Bot) -> dict:
        """Train the saved definition as a job; poll ``/jobs/{id}`` for its progress."""
        runner = jobs()
        if runner is None:
            raise AdminError("unavailable", "this node runs no training jobs")
        settings = body.model_dump(exclude={"promote", "labels"})
        problem = settings_problem(settings)
        if problem is not None:
            raise AdminError("invalid_request", problem[1], field=problem[0])
        saved = run(lambda a: a.definition(tenant, bot))
        run(lambda a: a.check_quota(tenant, bot))  # quota_exceeded before any training
        options = TrainOptions(settings, promote=body.promote, labels=body.labels)
        return runner.submit(tenant, bot, saved["definition"], options, actor="http")

    @app.get(base + "/jobs", tags=["bots"])
    def bot_jobs(tenant: str = Depends(scoped), bot: str = Bot) -> dict:
        runner = jobs()
        return {"jobs": runner.list(tenant, bot) if runner else []}

    @app.get("/api/v1/tenants/{tenant}/jobs/{job_id}", tags=["bots"])
    def job(job_id: str = Path(min_length=1, max_length=64), tenant: str = Depends(scoped)) -> dict:
        runner = jobs()
        if runner is None:
            raise AdminError("unknown_job", f"no training job {job_id!r}", job=job_id)
        return runner.get(tenant, job_id)
