"""The HTTP face of `pushgate worker --port N` (issue 10, "Seeing what it does";
docs/OPERATIONS.md): `/healthz`, `/readyz` and `/metrics` alone, answered as `serve` answers
them, so a worker can be probed and its deliveries scraped."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware

from pushgate.api import errors, health
from pushgate.api.guard import Guard
from pushgate.api.health import Runtime
from pushgate.api.observe import Observe
from pushgate.api.outage import OutageLog
from pushgate.services import Services


def create_probe_app(services: Services, background: Runtime, *, schema_head: str) -> Starlette:
    """No lifespan: the worker's command owns `background` and the store, not this app."""
    outage = OutageLog()
    return Starlette(
        routes=health.routes(services, background, outage, schema_head=schema_head),
        middleware=[
            Middleware(Observe, metrics=services.metrics),  # as on serve: ids, durations
            Middleware(Guard, outage=outage),
        ],
        exception_handlers=errors.handlers(outage),  # an unknown path: serve's JSON 404
    )
