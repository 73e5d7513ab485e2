"""A small HTTP/1.1 client for webhook deliveries and FCM sends: one POST, its status,
`Retry-After` and a short body.

Neither needs anything of a general client (no redirects, cookies, HTTP/2, decoding), and
httpx's layers cost about 1.5 ms of CPU per POST, more than the rest of a push cycle's webhook
or FCM work together (docs/PERFORMANCE.md, issues 7 and 8). This is h11's state machine over
anyio streams with a keep-alive pool per origin. A response body is read up to `DRAIN_BYTES`
so that the connection serves the next request; a longer one is cut there and closes the
connection, so a peer cannot make pushgate read or buffer much.
"""

from __future__ import annotations

import ssl
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import anyio.abc
import h11

DRAIN_BYTES = 64 * 1024
READ_BYTES = 16 * 1024
IDLE_PER_ORIGIN = 16


class PostError(Exception):
    """The POST got no HTTP response: refused, reset, timed out, or not HTTP/1.1."""


@dataclass(frozen=True, slots=True)
class Posted:
    status: int
    retry_after: str | None
    body: bytes = b""  # at most DRAIN_BYTES of it


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def split_url(url: str) -> tuple[Origin, str]:
    """The origin and the request target of an http(s) URL; ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Origin(parts.scheme, parts.hostname, port), target


class _Connection:
    __slots__ = ("h11", "stream")

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)

    async def _next_event(self) -> object:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self.stream.receive(READ_BYTES)
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                data = b""
            self.h11.receive_data(data)

    async def post(
        self, origin: Origin, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[Posted, bool]:
        """The response, and whether the connection can carry another request."""
        request = h11.Request(
            method="POST",
            target=target,
            headers=[
                ("host", origin.host_header),
                ("content-length", str(len(body))),
                *headers,
            ],
        )
        await self.stream.send(
            self.h11.send(request)
            + self.h11.send(h11.Data(data=body))
            + self.h11.send(h11.EndOfMessage())
        )
        event = await self._next_event()
        while isinstance(event, h11.InformationalResponse):
            event = await self._next_event()
        if not isinstance(event, h11.Response):
            raise PostError("the connection closed before a response")
        retry_after = None
        for name, value in event.headers:
            if name == b"retry-after":
                retry_after = value.decode("latin-1")
        status, answer, kept = event.status_code, bytearray(), True
        while True:
            part = await self._next_event()
            if isinstance(part, h11.Data):
                answer += part.data
                if len(answer) > DRAIN_BYTES:
                    kept = False
                    break
            elif isinstance(part, h11.EndOfMessage):
                break
            else:
                kept = False  # closed mid-body: the status stands, the connection not
                break
        posted = Posted(status, retry_after, bytes(answer[:DRAIN_BYTES]))
        if not kept:
            return posted, False
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            return posted, True
        return posted, False


class Poster:
    """POSTs with keep-alive connections per origin; one per process, closed at shutdown."""

    def __init__(
        self, *, timeout_seconds: float, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._timeout = timeout_seconds
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = defaultdict(list)

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def _connect(self, origin: Origin) -> _Connection:
        stream: anyio.abc.ByteStream
        try:
            if origin.scheme == "https":
                stream = await anyio.connect_tcp(
                    origin.host, origin.port, ssl_context=self._tls(), tls_standard_compatible=False
                )
            else:
                stream = await anyio.connect_tcp(origin.host, origin.port)
        except OSError as exc:  # refused, unreachable, unknown host, a TLS handshake refused
            raise PostError(f"cannot connect to {origin.host_header}: {exc}") from exc
        return _Connection(stream)

    async def post(self, url: str, headers: list[tuple[str, str]], body: bytes) -> Posted:
        """One POST; PostError when no response came (within the timeout, all told)."""
        try:
            origin, target = split_url(url)
        except ValueError as exc:
            raise PostError(str(exc)) from exc
        with anyio.move_on_after(self._timeout) as scope:
            try:
                return await self._post(origin, target, headers, body)
            except (OSError, anyio.BrokenResourceError, h11.ProtocolError) as exc:
                raise PostError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        assert scope.cancelled_caught
        raise PostError(f"no response within {self._timeout:g} s")

    async def _post(
        self, origin: Origin, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> Posted:
        idle = self._idle[origin]
        while idle:
            # A kept connection the receiver closed meanwhile fails before any response; the
            # POST goes again on another (a receiver may see a delivery twice: at least once).
            try:
                return await self._exchange(origin, idle.pop(), target, headers, body)
            except (OSError, anyio.BrokenResourceError, h11.ProtocolError, PostError):
                continue
        connection = await self._connect(origin)
        return await self._exchange(origin, connection, target, headers, body)

    async def _exchange(
        self,
        origin: Origin,
        connection: _Connection,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> Posted:
        try:
            posted, reusable = await connection.post(origin, target, headers, body)
        except BaseException:  # a failure or the timeout: the connection is done for
            with anyio.CancelScope(shield=True):
                await connection.stream.aclose()
            raise
        await self._release(origin, connection, reusable)
        return posted

    async def _release(self, origin: Origin, connection: _Connection, reusable: bool) -> None:
        idle = self._idle[origin]
        if reusable and len(idle) < IDLE_PER_ORIGIN:
            idle.append(connection)
        else:
            await connection.stream.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, defaultdict(list)
        for connections in idle.values():
            for connection in connections:
                with anyio.CancelScope(shield=True):
                    await connection.stream.aclose()
