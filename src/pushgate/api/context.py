"""What a request handler needs from the app: the services the wiring built."""

from __future__ import annotations

from starlette.requests import Request

from pushgate.services import Services


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found
