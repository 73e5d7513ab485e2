"""The ASGI application: routes, error rendering, body cap, and the lifespan that owns the
background runtime (STYLE.md §15: every background task has an owner)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pushgate.api import (
    account,
    admin,
    authenticate,
    device,
    docs,
    errors,
    health,
    inbox,
    openapi,
    pages,
    rp_events,
    rp_sessions,
    webpush,
)
from pushgate.api.guard import Guard
from pushgate.api.health import Runtime
from pushgate.api.limits import BodyLimit
from pushgate.api.observe import Observe
from pushgate.api.outage import OutageLog
from pushgate.services import Services

log = logging.getLogger("pushgate.api")


__all__ = ["Runtime", "create_app"]


def create_app(
    services: Services,
    *,
    close_store: bool = True,
    background: Runtime | None = None,
    schema_head: str | None = None,  # the migration the database must be at (readyz)
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
            *authenticate.routes,
            *webpush.routes,
            *inbox.routes,
            *admin.routes,  # the admin API /admin/... (issue 10)
            *health.routes(services, background, outage, schema_head=schema_head),
            Route("/openapi.json", openapi_json),
            *docs.routes("pushgate API"),
            *pages.routes,  # the login and account pages (issue 9)
            *account.routes,
        ],
        middleware=[
            Middleware(Observe, metrics=services.metrics),  # request id, duration by route
            Middleware(Guard, outage=outage),
            Middleware(BodyLimit, max_bytes=services.settings.max_body_bytes),
        ],
        exception_handlers=errors.handlers(outage),
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.background = background
    return app
