"""`/healthz`, `/readyz` and `/metrics` (issue 10, "Seeing what it does"; docs/OPERATIONS.md).

`/healthz` says the process is up: it reads no database and answers 200 while the process
serves, so a liveness probe never restarts a server for a database outage a restart cannot
cure. `/readyz` says it can do its work: the database answers, its schema is this code's, and
every background task runs; otherwise 503 with the first reason. `/metrics` is the Prometheus
text, optionally behind a bearer token.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pushgate.api.errors import error_response
from pushgate.api.outage import OutageLog
from pushgate.errors import Unavailable
from pushgate.metrics import CONTENT_TYPE, Exposition, OutboxGauge
from pushgate.services import Services

# Scrapers (an HA pair of Prometheus servers, say) share one outbox read for this long.
OUTBOX_CACHE_MS = 5_000


class TaskState(Protocol):
    @property
    def state(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    def as_json(self) -> dict[str, object]: ...


class Runtime(Protocol):
    """The background runtime the lifespan starts (`pushgate.background.Background`)."""

    @property
    def healthy(self) -> bool: ...
    def health(self) -> Mapping[str, TaskState]: ...
    async def run(self) -> None: ...


def schema_problem(revision: str | None, head: str) -> str | None:
    """Why a database at migration `revision` does not suit code whose newest is `head`."""
    if revision == head:
        return None
    if revision is None:
        return "the database has no schema: run `pushgate migrate`"
    if revision < head:  # revisions are numbered 0001, 0002, ...
        return (
            f"the database schema is at {revision}, this server needs {head}: "
            "run `pushgate migrate`"
        )
    return f"the database schema is at {revision}, newer than this server's {head}"


def _task_problem(background: Runtime) -> str:
    for name, task in background.health().items():
        if task.state != "running":
            why = f": {task.reason}" if task.reason else ""
            return f"background task {name} is {task.state}{why}"
    return "the background runtime is starting"


class _OutboxReading:
    """The outbox gauges from one query, at most every `OUTBOX_CACHE_MS` of the clock."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._value: OutboxGauge | None = None
        self._read_ms: int | None = None

    async def get(self) -> OutboxGauge | None:
        now = self._services.clock.now_ms()
        if self._read_ms is not None and 0 <= now - self._read_ms < OUTBOX_CACHE_MS:
            return self._value
        try:
            async with self._services.store.autocommit() as db:
                stats = await db.outbox.stats(now)
        except Unavailable:
            self._value = None  # no figure rather than a stale one
        else:
            oldest = 0 if stats.oldest_due_ms is None else max(0, now - stats.oldest_due_ms)
            self._value = OutboxGauge(stats.pending, oldest / 1000)
        self._read_ms = now
        return self._value


def routes(
    services: Services,
    background: Runtime | None,
    outage: OutageLog,
    *,
    schema_head: str | None,
) -> list[Route]:
    """The three routes; `schema_head` None skips the schema check (an app built by hand)."""

    def tasks() -> dict[str, object]:
        if background is None:
            return {}
        return {name: h.as_json() for name, h in background.health().items()}

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "tasks": tasks()})

    def unready(reason: str) -> JSONResponse:
        return JSONResponse({"status": "unready", "reason": reason, "tasks": tasks()}, 503)

    async def readyz(request: Request) -> JSONResponse:
        try:
            revision = await services.store.schema_revision()
        except Unavailable as exc:
            outage.failed(exc, request.url.path)  # the details, once per outage, in the log
            return unready("the database is unreachable")
        problem = schema_problem(revision, schema_head) if schema_head else None
        if problem is not None:
            return unready(problem)
        if background is not None and not background.healthy:
            return unready(_task_problem(background))
        return JSONResponse({"status": "ready", "tasks": tasks()})

    exposition = Exposition(services.metrics)
    outbox = _OutboxReading(services)
    token = services.settings.metrics_token.encode()

    async def metrics(request: Request) -> Response:
        if token and not _bearer_matches(request, token):
            response = error_response(
                request.url.path, 401, "unauthorized", "a valid bearer token is required"
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        body = exposition.render(await outbox.get())
        return Response(body, media_type=CONTENT_TYPE)

    return [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
    ]


def _bearer_matches(request: Request, token: bytes) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token)
