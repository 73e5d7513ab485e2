"""A minimal HTTP/1.1 keep-alive client on asyncio + httptools, for the benchmark driver.

httpx costs about as much CPU per request as the server does; on a 2-core machine shared by the
driver and the server that would starve the thing being measured. This client does one
`transport.write` per request and parses the answer with the same C parser uvicorn uses.
One connection serves one request at a time (one per simulated party), like a keep-alive pool
of size one.
"""

from __future__ import annotations

import asyncio

import httptools


class HttpError(Exception):
    pass


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"bad response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(HttpError(f"connection lost: {exc!r}"))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), b"".join(self.body)))


class Connection:
    """One keep-alive connection; `request` returns (status, body)."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        self.host, self.port = host, port
        fixed = f"Host: {host}:{port}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in (headers or {}).items()
        )
        self._fixed = fixed.encode("latin-1")
        self._proto: _Protocol | None = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(_Protocol, self.host, self.port)
        self._proto = proto
        return proto

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        proto = self._proto or await self._connect()
        head = f"{method} {path} HTTP/1.1\r\n".encode("latin-1") + self._fixed
        if body is not None:
            head += b"Content-Length: %d\r\n" % len(body)
        data = head + b"\r\n" + (body or b"")
        waiter: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        proto.waiter = waiter
        assert proto.transport is not None
        proto.transport.write(data)
        try:
            return await waiter
        except HttpError:
            self._proto = None
            raise

    def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None


class HttpxConnection:
    """The same interface on httpx (`--client httpx`), to measure what the client costs."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        import httpx

        self._client = httpx.AsyncClient(
            base_url=f"http://{host}:{port}",
            headers=headers or {},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=30.0,
        )

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        reply = await self._client.request(method, path, content=body)
        return reply.status_code, reply.content

    def close(self) -> None:
        # Closed with the event loop; aclose() would need awaiting from every caller.
        pass

    async def aclose(self) -> None:
        await self._client.aclose()
