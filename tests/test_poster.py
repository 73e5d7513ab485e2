"""The poster (webhooks, FCM) against raw loopback HTTP/1.1 servers: keep-alive, bodies it drains or
refuses to read, chunked and closing responses, a kept connection the receiver dropped,
timeouts, refused connections and HTTPS with a private CA."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import h11
import pytest
from anyio.streams.tls import TLSStream

from pushgate.poster import DRAIN_BYTES, Poster, PostError, split_url
from pushgate.transports.tls import client_ssl_context
from tests.transports.certs import make_pki

Reply = Callable[[h11.Request, bytes], Awaitable[list[h11.Event] | None]]


class Receiver:
    """Answers each request with what `reply` returns (None: hang up without answering)."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.connections = 0
        self.requests: list[tuple[h11.Request, bytes]] = []

    async def serve(self, stream: anyio.abc.ByteStream) -> None:
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        async with stream:
            while True:
                request: h11.Request | None = None
                body = b""
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        try:
                            conn.receive_data(await stream.receive())
                        except (anyio.EndOfStream, anyio.BrokenResourceError):
                            return
                    elif isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    else:
                        return
                assert request is not None
                self.requests.append((request, body))
                events = await self.reply(request, body)
                if events is None:
                    return
                for event in events:
                    data = conn.send(event)
                    if data:
                        await stream.send(data)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()


@asynccontextmanager
async def receiving(receiver: Receiver, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    scheme, host = ("https", "localhost") if tls is not None else ("http", "127.0.0.1")

    async def handle(raw: anyio.abc.ByteStream) -> None:
        try:
            stream = raw
            if tls is not None:
                stream = await TLSStream.wrap(
                    raw, server_side=True, ssl_context=tls, standard_compatible=False
                )
            await receiver.serve(stream)
        except (OSError, anyio.BrokenResourceError, anyio.EndOfStream):
            pass  # a client that refused the certificate, or went away
        finally:
            with anyio.CancelScope(shield=True):
                await raw.aclose()

    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, handle)
        try:
            yield f"{scheme}://{host}:{port}/hook?x=1"
        finally:
            tasks.cancel_scope.cancel()


def _ok(status: int = 204, body: bytes = b"", **headers: str) -> Reply:
    async def reply(_request: h11.Request, _body: bytes) -> list[h11.Event]:
        fields = [(k.replace("_", "-"), v) for k, v in headers.items()]
        if body or status != 204:
            fields.append(("content-length", str(len(body))))
        events: list[h11.Event] = [h11.Response(status_code=status, headers=fields)]
        if body:
            events.append(h11.Data(data=body))
        return [*events, h11.EndOfMessage()]

    return reply


HEADERS = [("content-type", "application/json"), ("webhook-id", "msg_1")]


async def test_keeps_the_connection_for_the_next_post() -> None:
    receiver = Receiver(_ok())
    poster = Poster(timeout_seconds=5)
    async with receiving(receiver) as url:
        for i in range(3):
            posted = await poster.post(url, HEADERS, b'{"n":%d}' % i)
            assert (posted.status, posted.retry_after) == (204, None)
        await poster.aclose()
    assert receiver.connections == 1
    request, body = receiver.requests[2]
    assert (request.method, request.target) == (b"POST", b"/hook?x=1")
    assert dict(request.headers)[b"webhook-id"] == b"msg_1"
    assert dict(request.headers)[b"host"].startswith(b"127.0.0.1:")
    assert body == b'{"n":2}'


async def test_a_short_body_is_drained_and_a_long_one_closes_the_connection() -> None:
    bodies = iter([b"x" * 1000, b"y" * (DRAIN_BYTES + 1), b"z"])

    async def reply(request: h11.Request, body: bytes) -> list[h11.Event]:
        return await _ok(200, next(bodies))(request, body)

    receiver = Receiver(reply)
    poster = Poster(timeout_seconds=5)
    async with receiving(receiver) as url:
        posted = [await poster.post(url, HEADERS, b"{}") for _ in range(3)]
        await poster.aclose()
    assert [p.status for p in posted] == [200, 200, 200]
    # The body is kept up to DRAIN_BYTES: a longer one is cut there.
    assert [p.body for p in posted] == [b"x" * 1000, b"y" * DRAIN_BYTES, b"z"]
    assert receiver.connections == 2  # the long body cost its connection, the short one not


async def test_chunked_and_closing_responses() -> None:
    async def chunked(_request: h11.Request, _body: bytes) -> list[h11.Event]:
        return [
            h11.Response(status_code=503, headers=[("retry-after", "7")]),  # chunked by h11
            h11.Data(data=b"busy"),
            h11.Data(data=b" now"),
            h11.EndOfMessage(),
        ]

    receiver = Receiver(chunked)
    poster = Poster(timeout_seconds=5)
    async with receiving(receiver) as url:
        assert await poster.post(url, HEADERS, b"{}") == await poster.post(url, HEADERS, b"{}")
        posted = await poster.post(url, HEADERS, b"{}")
        await poster.aclose()
    assert (posted.status, posted.retry_after, posted.body) == (503, "7", b"busy now")
    assert receiver.connections == 1

    closing = Receiver(_ok(200, b"bye", connection="close"))
    poster = Poster(timeout_seconds=5)
    async with receiving(closing) as url:
        for _ in range(2):
            assert (await poster.post(url, HEADERS, b"{}")).status == 200
        await poster.aclose()
    assert closing.connections == 2


async def test_a_kept_connection_the_receiver_dropped_is_replaced() -> None:
    answered = 0

    async def once_per_connection(request: h11.Request, body: bytes) -> list[h11.Event] | None:
        nonlocal answered
        answered += 1
        if answered == 2:
            return None  # the kept connection dies under the second POST
        return await _ok()(request, body)

    receiver = Receiver(once_per_connection)
    poster = Poster(timeout_seconds=5)
    async with receiving(receiver) as url:
        assert (await poster.post(url, HEADERS, b"1")).status == 204
        assert (await poster.post(url, HEADERS, b"2")).status == 204
        await poster.aclose()
    assert receiver.connections == 2
    assert [body for _, body in receiver.requests] == [b"1", b"2", b"2"]  # at least once


async def test_a_receiver_that_never_answers_times_out() -> None:
    async def hang(_request: h11.Request, _body: bytes) -> list[h11.Event]:
        await anyio.sleep_forever()
        raise AssertionError

    poster = Poster(timeout_seconds=0.2)
    async with receiving(Receiver(hang)) as url:
        with pytest.raises(PostError, match=r"no response within 0\.2 s"):
            await poster.post(url, HEADERS, b"{}")
        await poster.aclose()


async def test_a_refused_connection_and_a_bad_url() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nobody listens there now
    poster = Poster(timeout_seconds=2)
    with pytest.raises(PostError, match=f"cannot connect to 127.0.0.1:{port}"):
        await poster.post(f"http://127.0.0.1:{port}/", HEADERS, b"{}")
    with pytest.raises(PostError, match="not an http"):
        await poster.post("ftp://example.com/", HEADERS, b"{}")
    assert split_url("https://example.com")[0].host_header == "example.com"
    assert split_url("http://[::1]:8080/a")[1] == "/a"
    assert split_url("http://[::1]:8080/a")[0].host_header == "[::1]:8080"


async def test_https_trusts_the_configured_ca_and_nothing_else(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    receiver = Receiver(_ok())
    async with receiving(receiver, tls=pki.server_context(["http/1.1"])) as url:
        trusting = Poster(timeout_seconds=5, ssl_context=client_ssl_context(str(pki.ca_file)))
        assert (await trusting.post(url, HEADERS, b"{}")).status == 204
        await trusting.aclose()
        stranger = Poster(timeout_seconds=5)
        with pytest.raises(PostError, match="cannot connect"):
            await stranger.post(url, HEADERS, b"{}")
        await stranger.aclose()
