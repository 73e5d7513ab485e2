"""The ASGI application: routers, error rendering, body cap, and the lifespan that owns the
expiry sweeper (STYLE.md §15: every background task has an owner)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from pushgate import __version__
from pushgate.api import device, errors, rp_sessions
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

    app = FastAPI(
        title="pushgate",
        version=__version__,
        summary="Push authentication: UnifyID-compatible relying-party API",
        lifespan=lifespan,
    )
    app.state.services = services
    errors.install(app)
    app.include_router(rp_sessions.router)
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
    """The generated schema, minus FastAPI's 422: validation errors are our documented 400."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        components = schema.get("components", {}).get("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
    return app.openapi_schema
