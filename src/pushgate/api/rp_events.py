"""`GET /v1/push/sessions/{id}/events`: a session's changes as server-sent events (issue 7,
"results without polling"; the format is the WHATWG HTML "server-sent events" section).

Every event is `event: session`, `id: <1, 2, ...>`, `data: <the session JSON of GET>`; the
first is the session as it is, the body ends after the terminal one, and a comment line keeps
idle connections (and the proxies on their way) open. The key and the session are checked
before anything is sent, so a refusal is the same `{code, message}` as for `GET`, never a
stream. What to send and when is `sessions.stream.watch`; this module only frames it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncGenerator
from contextlib import aclosing

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from pushgate.api.context import services
from pushgate.errors import NotFound, PushgateError
from pushgate.sessions.stream import SessionJson, watch

log = logging.getLogger("pushgate.api")
MEDIA_TYPE = "text/event-stream"
HEARTBEAT = b": keep-alive\n\n"
_HEADERS = {
    "Content-Type": MEDIA_TYPE,  # no charset parameter: SSE is always UTF-8
    "Cache-Control": "no-store",
    # nginx buffers responses by default, which would hold every event back.
    "X-Accel-Buffering": "no",
}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def frame(sequence: int, session: SessionJson) -> bytes:
    """One event. JSON escapes CR and LF inside strings, so `data` is always a single line."""
    data = json.dumps(session, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return f"event: session\nid: {sequence}\ndata: {data}\n\n".encode()


class EventStream(Response):
    """Sends `updates` as events until the last one, the client leaves, or the store fails."""

    def __init__(
        self, updates: AsyncGenerator[SessionJson, None], heartbeat_seconds: float
    ) -> None:
        # No Response.__init__: it would send `content-length: 0` for the empty body.
        self.status_code = 200
        self.background = None
        self.init_headers(_HEADERS)
        self._updates = updates
        self._heartbeat = heartbeat_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lock = anyio.Lock()  # the pump and the heartbeat share one connection
        finished = False

        async def body(chunk: bytes) -> None:
            async with lock:
                try:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                except OSError:  # the client left (ASGI 2.4 servers say so on send)
                    tasks.cancel_scope.cancel()

        async def pump() -> None:
            nonlocal finished
            sequence = 0
            try:
                async for session in self._updates:
                    sequence += 1
                    await body(frame(sequence, session))
            except PushgateError as exc:
                # The events sent stand; a client reconnects and gets the session again.
                log.warning(
                    "event stream ended early",
                    extra={"fields": {"path": scope["path"], "reason": exc.reason}},
                )
            finished = True
            tasks.cancel_scope.cancel()

        async def heartbeat() -> None:
            while True:
                await anyio.sleep(self._heartbeat)
                await body(HEARTBEAT)

        async def hang_up() -> None:
            # A client that leaves ends the stream now, not at the next heartbeat.
            while (await receive())["type"] != "http.disconnect":
                pass
            tasks.cancel_scope.cancel()

        async with aclosing(self._updates):
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(pump)
                tasks.start_soon(heartbeat)
                tasks.start_soon(hang_up)
        if finished:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def session_events(request: Request) -> Response:
    svc = services(request)
    # The same checks, errors and order as GET /v1/push/sessions/{id}.
    realm = await svc.accounts.realm_for_api_key(request.headers.get("x-api-key"))
    session_id = str(request.path_params["id"])
    if not _UUID.fullmatch(session_id):
        raise NotFound("no such session", reason="malformed session id")
    await svc.sessions.get(realm, session_id)  # NotFound here is a 404, not a stream
    if request.method == "HEAD":  # the headers a GET would send, and no stream to hold open
        return Response(headers=_HEADERS)
    settings = svc.settings
    updates = watch(
        svc.sessions,
        svc.events,
        svc.clock,
        realm,
        session_id,
        recheck_seconds=settings.event_stream_recheck_seconds,
    )
    return EventStream(updates, settings.event_stream_heartbeat_seconds)


routes = [Route("/v1/push/sessions/{id}/events", session_events, methods=["GET"])]
