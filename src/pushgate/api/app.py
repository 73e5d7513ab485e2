"""The ASGI application: routes, error rendering, body cap, and the lifespan that owns the
background runtime (STYLE.md §15: every background task has an owner)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Protocol

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pushgate.api import device, docs, errors, inbox, openapi, rp_events, rp_sessions, webpush
from pushgate.api.guard import Guard
from pushgate.api.limits import BodyLimit
from pushgate.api.outage import OutageLog
from pushgate.services import Services

log = logging.getLogger("pushgate.api")


class Runtime(Protocol):
    """The background runtime the lifespan starts (`pushgate.background.Background`)."""

    @property
    def healthy(self) -> bool: ...
    def health(self) -> Mapping[str, TaskState]: ...
    async def run(self) -> None: ...


class TaskState(Protocol):
    def as_json(self) -> dict[str, object]: ...


def create_app(
    services: Services, *, close_store: bool = True, background: Runtime | None = None
) -> Starlette:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            async with anyio.create_task_group() as tasks:
                if background is not None:
                    tasks.start_soon(background.run)
                yield
                tasks.cancel_scope.cancel()
        finally:
            if close_store:
                await services.store.aclose()

    async def healthz(_request: Request) -> JSONResponse:
        # Up means: the database answers and every background task is running.
        await services.store.ping()
        if background is None:
            return JSONResponse({"status": "ok", "tasks": {}})
        tasks = {name: h.as_json() for name, h in background.health().items()}
        if not background.healthy:
            return JSONResponse({"status": "degraded", "tasks": tasks}, 503)
        return JSONResponse({"status": "ok", "tasks": tasks})

    document = openapi.build(services.settings)

    async def openapi_json(_request: Request) -> JSONResponse:
        return JSONResponse(document)

    outage = OutageLog()
    # Plain Starlette: FastAPI's per-request machinery cost as much CPU as a whole handler
    # (issue #3); requests are validated by the pydantic models in `rp_models`.
    app = Starlette(
        routes=[
            *rp_sessions.routes,
            *rp_events.routes,
            *device.routes,
            *webpush.routes,
            *inbox.routes,
            Route("/healthz", healthz),
            Route("/openapi.json", openapi_json),
            *docs.routes("pushgate API"),
        ],
        middleware=[
            Middleware(Guard, outage=outage),
            Middleware(BodyLimit, max_bytes=services.settings.max_body_bytes),
        ],
        exception_handlers=errors.handlers(outage),
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.background = background
    return app
