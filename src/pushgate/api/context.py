"""What a request handler needs from the app: the services the wiring built, and who the
client is."""

from __future__ import annotations

from starlette.requests import Request

from pushgate import forwarded
from pushgate.services import Services


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def client_ip(request: Request) -> str | None:
    """The client's address: the TCP peer, or what trusted proxies forwarded
    (`PUSHGATE_TRUSTED_PROXIES`, forwarded.py). For audit rows and a session's context."""
    peer = request.client.host if request.client else None
    trusted = forwarded.trusted_networks(services(request).settings.trusted_proxies)
    return forwarded.client_ip(peer, request.headers.items(), trusted)
