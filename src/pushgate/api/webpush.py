"""`GET /v1/webpush/key`: the VAPID public key a browser authenticator subscribes with
(`pushManager.subscribe({applicationServerKey})`, RFC 8292 §3.2). Public by nature: no API
key, no database."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pushgate.api.context import services


async def webpush_key(request: Request) -> JSONResponse:
    key = services(request).vapid.public_key
    # Browsers ask on every app start (a subscription is renewed then); the key changes only
    # when the operator replaces its file, and a process restart follows that.
    return JSONResponse({"publicKey": key}, headers={"cache-control": "public, max-age=300"})


routes = [Route("/v1/webpush/key", webpush_key, methods=["GET"])]
