"""The outermost middleware: what no error handler caught, rendered once (issue #6).

Starlette's own last-resort handler re-raises after answering, so the server logs a second
traceback; this one answers the face's 500, logs one traceback, and lets nothing through. A
client that hangs up mid-body is routine (a phone losing signal), not an error: one debug
line, no answer to send. It also tells the outage log when a request needing storage has
succeeded again.
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pushgate.api.errors import error_response
from pushgate.api.outage import OutageLog

log = logging.getLogger("pushgate.api")

# Paths whose success proves the database answered (every `/v1` and `/json` route reads it).
_STORAGE_PATHS = ("/v1/", "/json/", "/readyz")


class Guard:
    def __init__(self, app: ASGIApp, outage: OutageLog) -> None:
        self.app = app
        self.outage = outage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        outage = self.outage

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if (
                    outage.active
                    and 200 <= message["status"] < 300
                    and scope["path"].startswith(_STORAGE_PATHS)
                ):
                    outage.recovered()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except ClientDisconnect:
            log.debug("client disconnected mid-request", extra={"fields": {"path": scope["path"]}})
        except Exception as exc:
            log.error("unhandled error", exc_info=exc, extra={"fields": {"path": scope["path"]}})
            if not started:
                response = error_response(scope["path"], 500, "internalError", "internal error")
                await response(scope, receive, send)
