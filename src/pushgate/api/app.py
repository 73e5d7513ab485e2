"""The ASGI application: routers, error rendering, body cap, and the lifespan that owns the
expiry sweeper (STYLE.md §15: every background task has an owner)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from pushgate import __version__
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


def create_app(services: Services, *, close_store: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_sweep_expired, services)
                tasks.start_soon(services.store.watch_finished, services.events.publish)
                yield
                tasks.cancel_scope.cancel()
        finally:
            if close_store:
                await services.store.aclose()

    app = FastAPI(title="pushgate", version=__version__, lifespan=lifespan)
    app.state.services = services
    errors.install(app)
    app.router.routes.extend(rp_sessions.routes)
    app.router.routes.extend(device.routes)

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> JSONResponse:
        async with services.store.autocommit() as db:
            await db.get_realm("/")
        return JSONResponse({"status": "ok"})

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, max_bytes=services.settings.max_body_bytes)
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        app.openapi_schema = openapi.build()
    return app.openapi_schema
