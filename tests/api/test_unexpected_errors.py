"""An error no handler knows is the face's generic 500, logged with ONE traceback (issue #6:
Starlette's last-resort handler answered and then re-raised, so the server logged a second).

The failing endpoints are added to the real app for the test: the point is what the app's
error machinery does with an exception it has never seen, not where the exception comes from.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from pushgate.api.app import create_app
from pushgate.services import Services
from tests.api.live import serving

V1_500 = {"code": "internalError", "message": "internal error"}
CREST_500 = {"code": 500, "reason": "Internal Server Error", "message": "internal error"}


class Surprise(Exception):
    """Nothing in pushgate raises or handles this."""


async def _boom(_request: Request) -> Response:
    raise Surprise("boom")


@pytest.fixture
def app(services: Services) -> Starlette:
    app = create_app(services, close_store=False)
    app.add_route("/v1/boom", _boom, methods=["GET", "POST"])
    app.add_route("/json/boom", _boom, methods=["GET", "POST"])
    return app


@pytest.fixture
async def asgi(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions (the default): an exception escaping the app fails the request.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info]


async def test_the_face_gets_its_500_and_the_log_one_traceback(
    asgi: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    for path, expected in (("/v1/boom", V1_500), ("/json/boom", CREST_500)):
        caplog.clear()
        reply = await asgi.post(path, json={})
        assert (reply.status_code, reply.json()) == (500, expected)
        (record,) = _tracebacks(caplog)
        assert record.exc_info is not None
        assert record.exc_info[0] is Surprise
        assert record.getMessage() == "unhandled error"


async def test_the_server_logs_no_second_traceback(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with serving(app) as port, httpx.AsyncClient() as client:
        reply = await client.get(f"http://127.0.0.1:{port}/v1/boom")
        assert (reply.status_code, reply.json()) == (500, V1_500)
        reply = await client.get(f"http://127.0.0.1:{port}/json/boom")
        assert (reply.status_code, reply.json()) == (500, CREST_500)
    assert [r.name for r in _tracebacks(caplog)] == ["pushgate.api", "pushgate.api"]
    assert [r for r in caplog.records if r.name.startswith("uvicorn") and r.levelno >= 40] == []
