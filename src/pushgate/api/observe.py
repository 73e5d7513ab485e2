"""The outermost middleware: a request id for every HTTP request, and its duration by route
(issue 10, "Seeing what it does"; docs/OPERATIONS.md).

The id is the caller's `X-Request-Id` when it is well formed (a proxy's or a relying party's,
so one id follows a request across systems), else a new one; it is sent back as
`X-Request-Id` and set in `logs.REQUEST_ID` for every log line the request writes. The
duration is labelled with the route's template (`/v1/push/sessions/{session_id}`), never the
raw path: one series per route, whatever clients send.
"""

from __future__ import annotations

import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pushgate.logs import REQUEST_ID
from pushgate.metrics import Metrics
from pushgate.metrics.instruments import UNMATCHED_ROUTE

HEADER = b"x-request-id"
# Ids as proxies and tracing libraries make them (UUIDs, hex, base64url, dotted); anything
# else, or longer, is replaced rather than echoed into headers and logs.
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._:+/=-]{1,128}")


def incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            return value.decode("ascii") if _WELL_FORMED.fullmatch(value) else None
    return None


class Observe:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_id(scope) or uuid.uuid4().hex
        header = (HEADER, request_id.encode("ascii"))

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, sending)
        finally:
            # The router put the matched route into the scope (Starlette sets scope["route"]).
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            self.metrics.http_request(route, time.perf_counter() - started)
            REQUEST_ID.reset(token)
