"""A client that hangs up mid-body is routine, not an error (issue #6: each one logged
tracebacks at error level, so anyone could flood the log): at most one debug line, no
traceback, no answer, nothing written."""

from __future__ import annotations

import logging

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Message, Scope

from pushgate.api.app import create_app
from pushgate.services import Services
from tests.api.helpers import SESSIONS, Api, endpoint
from tests.api.live import serving

PARTIAL = b'{"mechanismUid": "0b1c'


@pytest.fixture
def app(services: Services) -> Starlette:
    return create_app(services, close_store=False)


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


def _scope(method: str, target: str, headers: dict[str, str]) -> Scope:
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", b"200"),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
    }


async def _hang_up(app: Starlette, method: str, target: str, **headers: str) -> list[Message]:
    """Call the app as a server would for a client that sends part of a body, then leaves."""
    pending: list[Message] = [{"type": "http.request", "body": PARTIAL, "more_body": True}]
    sent: list[Message] = []

    async def receive() -> Message:
        # After the first chunk the client is gone, and stays gone.
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(10):
        await app(_scope(method, target, headers), receive, send)
    return sent


def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    assert [r for r in caplog.records if r.exc_info] == []
    assert [(r.name, r.getMessage()) for r in caplog.records if r.levelno > logging.DEBUG] == []
    disconnects = [r for r in caplog.records if "disconnect" in r.getMessage()]
    assert len(disconnects) <= 1


async def test_a_device_hanging_up_mid_body(
    app: Starlette, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    await api.user("/", "alice")
    await api.register("/", "alice")
    for action in ("pending", "register", "authenticate", "refresh"):
        before = await api.snapshot()
        caplog.clear()
        caplog.set_level(logging.DEBUG)
        assert await _hang_up(app, "POST", endpoint("/", action)) == []
        _quiet(caplog)
        assert await api.snapshot() == before


async def test_a_relying_party_hanging_up_mid_body(
    app: Starlette, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    key = await api.key()
    session = await api.create_session(key, "alice")
    for method, target in (("POST", SESSIONS), ("PATCH", f"{SESSIONS}/{session['id']}")):
        before = await api.snapshot()
        caplog.clear()
        caplog.set_level(logging.DEBUG)
        assert await _hang_up(app, method, target, **{"X-API-Key": key}) == []
        _quiet(caplog)
        assert await api.snapshot() == before
    assert await api.status(key, session["id"]) != "canceled"


async def test_through_a_real_server(
    app: Starlette, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    before = await api.snapshot()
    async with serving(app) as port:
        for _ in range(3):
            stream = await anyio.connect_tcp("127.0.0.1", port)
            head = (
                f"POST {endpoint('/', 'pending')} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
            )
            await stream.send(head.encode() + PARTIAL)
            await anyio.sleep(0.05)  # the server reads the head and starts the handler
            await stream.aclose()
        with anyio.fail_after(5):
            while len([r for r in caplog.records if "disconnect" in r.getMessage()]) < 3:
                await anyio.sleep(0.01)
    assert [r for r in caplog.records if r.exc_info] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert await api.snapshot() == before
