"""The relying-party client: `PushgateClient` (sync) and `AsyncPushgateClient` (async) on httpx,
for `/v1/push/sessions` (create, get, cancel, long-poll with `?wait=`, and the event stream).

Both share the request building and the response reading below; only the I/O differs.
Transport failures are httpx's own exceptions; every refusal of the API is an `ApiError`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from pushgate.client.session import ApiError, Session, StreamInterrupted
from pushgate.client.sse import EventParser

SESSIONS = "/v1/push/sessions"
DEFAULT_TIMEOUT = 10.0
MAX_WAIT_SECONDS = 60  # the server's default PUSHGATE_MAX_WAIT_SECONDS
# Heartbeats arrive every 15 s (by default): a stream silent for this long is dead.
STREAM_READ_TIMEOUT = 60.0
STREAM_RETRIES = 3  # reconnects in a row that bring nothing new before giving up


def _create_body(
    user: str,
    notification: Mapping[str, Any] | None,
    push_type: str | None,
    context: Mapping[str, Any] | None,
    operation: Mapping[str, Any] | None,
    seconds_to_expire: int | None,
) -> dict[str, Any]:
    fields = {
        "user": user,
        "notification": dict(notification) if notification is not None else None,
        "pushType": push_type,
        "context": dict(context) if context is not None else None,
        "operation": dict(operation) if operation is not None else None,
        "secondsToExpire": seconds_to_expire,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _session_path(session_id: str) -> str:
    # One path segment: an id with a `/` or `?` in it must not reach another resource.
    return f"{SESSIONS}/{quote(session_id, safe='')}"


def _error(response: httpx.Response) -> ApiError:
    code, message = "unknown", response.reason_phrase or "error"
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("code", code))
        message = str(body.get("message", message))
    return ApiError(response.status_code, code, message, retry_after=_retry_after(response.headers))


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after", "").strip()
    # Seconds only: pushgate never sends the HTTP-date form.
    return float(value) if value.isdigit() else None


def _session(response: httpx.Response, *expected: int) -> Session:
    if response.status_code not in expected:
        raise _error(response)
    try:
        return Session.from_json(response.json())
    except ValueError as exc:
        raise ApiError(response.status_code, "invalidResponse", str(exc)) from None


def _wait_seconds(deadline: float, max_wait: int) -> int:
    return max(0, min(max_wait, math.floor(deadline - time.monotonic())))


def _with_read(timeout: httpx.Timeout, read: float) -> httpx.Timeout:
    return httpx.Timeout(connect=timeout.connect, read=read, write=timeout.write, pool=timeout.pool)


def _wait_timeout(timeout: httpx.Timeout, wait: int) -> httpx.Timeout:
    # The server holds the request `wait` seconds before it answers.
    return _with_read(timeout, wait + (timeout.read or DEFAULT_TIMEOUT))


class _Follow:
    """What a session stream has shown so far, across reconnects."""

    def __init__(self) -> None:
        self.last: Session | None = None
        self.quiet_reconnects = 0

    def parse(self, parser: EventParser, line: str) -> Session | None:
        """The new session a line completes; a repeat of the last one (after a reconnect,
        whose first event is the session as it is) is not new."""
        event = parser.line(line)
        if event is None or event.event != "session":
            return None
        try:
            session = Session.from_json(json.loads(event.data))
        except ValueError as exc:
            raise ApiError(200, "invalidResponse", f"bad event: {exc}") from None
        if self.last is not None and session.raw == self.last.raw:
            return None
        self.last, self.quiet_reconnects = session, 0
        return session

    def ended(self) -> None:
        """The body ended; raise unless another attempt is worth making."""
        if self.last is not None and self.last.terminal:
            return
        self.quiet_reconnects += 1
        if self.quiet_reconnects > STREAM_RETRIES:
            raise StreamInterrupted("the event stream keeps ending before the session's end")

    @property
    def done(self) -> bool:
        return self.last is not None and self.last.terminal


def _headers(api_key: str) -> dict[str, str]:
    return {"X-API-Key": api_key, "Accept": "application/json"}


class PushgateClient:
    """A blocking client. Use it as a context manager, or call `close()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_wait_seconds: int = MAX_WAIT_SECONDS,
    ) -> None:
        self._owned = client is None
        self._http = client or httpx.Client(transport=transport)
        self._base = base_url.rstrip("/")
        self._headers = _headers(api_key)
        self._timeout = httpx.Timeout(timeout)
        self._max_wait = max_wait_seconds

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def _request(
        self, method: str, path: str, *, limits: httpx.Timeout | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {**self._headers, **kw.pop("headers", {})}
        return self._http.request(
            method, self._base + path, headers=headers, timeout=limits or self._timeout, **kw
        )

    def create(
        self,
        user: str,
        *,
        notification: Mapping[str, Any] | None = None,
        push_type: str | None = None,
        context: Mapping[str, Any] | None = None,
        operation: Mapping[str, Any] | None = None,
        seconds_to_expire: int | None = None,
        idempotency_key: str | None = None,
    ) -> Session:
        body = _create_body(user, notification, push_type, context, operation, seconds_to_expire)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        reply = self._request("POST", SESSIONS, json=body, headers=headers)
        return _session(reply, 200, 201)

    def get(self, session_id: str) -> Session:
        return _session(self._request("GET", _session_path(session_id)), 200)

    def cancel(self, session_id: str) -> Session:
        body = {"status": "canceled"}
        return _session(self._request("PATCH", _session_path(session_id), json=body), 200)

    def wait(self, session_id: str, timeout: float) -> Session:
        """The session once it has its answer, or as it is after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            wait = _wait_seconds(deadline, self._max_wait)
            if wait == 0:
                return self.get(session_id)
            reply = self._request(
                "GET",
                _session_path(session_id),
                params={"wait": wait},
                limits=_wait_timeout(self._timeout, wait),
            )
            session = _session(reply, 200)
            if session.terminal:
                return session

    def events(self, session_id: str) -> Iterator[Session]:
        """The session as it is, then after each change, until its final state."""
        follow = _Follow()
        while not follow.done:
            with self._http.stream(
                "GET",
                self._base + _session_path(session_id) + "/events",
                headers={**self._headers, "Accept": "text/event-stream"},
                timeout=_with_read(self._timeout, STREAM_READ_TIMEOUT),
            ) as reply:
                if reply.status_code != 200:
                    reply.read()
                    raise _error(reply)
                parser = EventParser()
                for line in reply.iter_lines():
                    session = follow.parse(parser, line)
                    if session is not None:
                        yield session
                follow.ended()


class AsyncPushgateClient:
    """The same client for asyncio and trio (anyio). Use it as an async context manager, or
    call `aclose()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_wait_seconds: int = MAX_WAIT_SECONDS,
    ) -> None:
        self._owned = client is None
        self._http = client or httpx.AsyncClient(transport=transport)
        self._base = base_url.rstrip("/")
        self._headers = _headers(api_key)
        self._timeout = httpx.Timeout(timeout)
        self._max_wait = max_wait_seconds

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()

    async def _request(
        self, method: str, path: str, *, limits: httpx.Timeout | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {**self._headers, **kw.pop("headers", {})}
        return await self._http.request(
            method, self._base + path, headers=headers, timeout=limits or self._timeout, **kw
        )

    async def create(
        self,
        user: str,
        *,
        notification: Mapping[str, Any] | None = None,
        push_type: str | None = None,
        context: Mapping[str, Any] | None = None,
        operation: Mapping[str, Any] | None = None,
        seconds_to_expire: int | None = None,
        idempotency_key: str | None = None,
    ) -> Session:
        body = _create_body(user, notification, push_type, context, operation, seconds_to_expire)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        reply = await self._request("POST", SESSIONS, json=body, headers=headers)
        return _session(reply, 200, 201)

    async def get(self, session_id: str) -> Session:
        return _session(await self._request("GET", _session_path(session_id)), 200)

    async def cancel(self, session_id: str) -> Session:
        body = {"status": "canceled"}
        return _session(await self._request("PATCH", _session_path(session_id), json=body), 200)

    async def wait(self, session_id: str, timeout: float) -> Session:  # noqa: ASYNC109 - the server's wait
        """The session once it has its answer, or as it is after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            wait = _wait_seconds(deadline, self._max_wait)
            if wait == 0:
                return await self.get(session_id)
            reply = await self._request(
                "GET",
                _session_path(session_id),
                params={"wait": wait},
                limits=_wait_timeout(self._timeout, wait),
            )
            session = _session(reply, 200)
            if session.terminal:
                return session

    async def events(self, session_id: str) -> AsyncIterator[Session]:
        """The session as it is, then after each change, until its final state."""
        follow = _Follow()
        while not follow.done:
            async with self._http.stream(
                "GET",
                self._base + _session_path(session_id) + "/events",
                headers={**self._headers, "Accept": "text/event-stream"},
                timeout=_with_read(self._timeout, STREAM_READ_TIMEOUT),
            ) as reply:
                if reply.status_code != 200:
                    await reply.aread()
                    raise _error(reply)
                parser = EventParser()
                async for line in reply.aiter_lines():
                    session = follow.parse(parser, line)
                    if session is not None:
                        yield session
                follow.ended()
