"""The ASGI application: routes, error rendering, body cap, and the lifespan that owns the
expiry sweeper (STYLE.md §15: every background task has an owner)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from pushgate.api import device, errors, openapi, rp_sessions
from pushgate.api.limits import BodyLimit
from pushgate.errors import PushgateError
from pushgate.services import Services

log = logging.getLogger("pushgate.api")


async def _sweep_expired(services: Services) -> None:
    while True:
        try:
            while await services.sessions.expire_due():
                pass
        except PushgateError as exc:
            log.warning("expiry sweep failed", extra={"fields": {"reason": exc.reason}})
        await anyio.sleep(services.settings.expiry_sweep_seconds)


def create_app(services: Services, *, close_store: bool = True) -> Starlette:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_sweep_expired, services)
                tasks.start_soon(services.store.watch_finished, services.events.publish)
                yield
                tasks.cancel_scope.cancel()
        finally:
            if close_store:
                await services.store.aclose()

    async def healthz(_request: Request) -> JSONResponse:
        async with services.store.autocommit() as db:
            await db.get_realm("/")
        return JSONResponse({"status": "ok"})

    document = openapi.build()

    async def openapi_json(_request: Request) -> JSONResponse:
        return JSONResponse(document)

    async def docs(_request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="pushgate API")

    # Plain Starlette: FastAPI's per-request machinery cost as much CPU as a whole handler
    # (issue #3); requests are validated by the pydantic models in `rp_models`.
    app = Starlette(
        routes=[
            *rp_sessions.routes,
            *device.routes,
            Route("/healthz", healthz),
            Route("/openapi.json", openapi_json),
            Route("/docs", docs),
        ],
        middleware=[Middleware(BodyLimit, max_bytes=services.settings.max_body_bytes)],
        exception_handlers=errors.handlers(),
        lifespan=lifespan,
    )
    app.state.services = services
    return app
