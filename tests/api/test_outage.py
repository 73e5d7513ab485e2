"""A database outage answers 503 with the documented body on both faces, logged once without a
traceback, and the log says when storage is back (issue #6: it answered 500, where the OpenAPI
document promises 503, and logged two tracebacks per request).

Outages are real: a PostgreSQL port nothing listens on, a SQLite file in a directory that does
not exist, a database that stops accepting connections, a secret key that does not open what
another key sealed.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from pushgate.api.app import create_app
from pushgate.protocol.message_ids import MessageKind, new_message_id
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.simulator import poll_body
from pushgate.wiring import build_services
from tests.api.helpers import SESSIONS, Api
from tests.support import POSTGRES_ADMIN_URL, TEST_SECRET_KEY

V1_DOWN = {"code": "internalError", "message": "storage is unavailable"}
CREST_DOWN = {"code": 503, "reason": "Service Unavailable", "message": "storage is unavailable"}
DEVICE_BODY = {"mechanismUid": str(uuid.uuid4()), "jwt": "x.y.z"}


def _client(services: Services) -> httpx.AsyncClient:
    app = create_app(services, close_store=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture(params=["postgres-refused", "sqlite-missing-directory"])
async def down(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    if request.param == "postgres-refused":
        url = "postgresql://postgres@127.0.0.1:1/none"
    else:
        url = f"sqlite:///{tmp_path / 'missing' / 'pushgate.db'}"
    settings = Settings(
        database_url=url, secret_key=TEST_SECRET_KEY, public_url="http://testserver"
    )
    services = build_services(settings)
    try:
        async with _client(services) as client:
            yield client
    finally:
        await services.store.aclose()


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info]


async def _device_post(client: httpx.AsyncClient, action: str, body: object) -> httpx.Response:
    return await client.post(f"/json/push/sns/message?_action={action}", json=body)


async def test_v1_answers_503_with_the_documented_body(down: httpx.AsyncClient) -> None:
    headers = {"X-API-Key": "some-key"}
    session = f"{SESSIONS}/{uuid.uuid4()}"
    for reply in (
        await down.post(SESSIONS, json={"user": "alice"}, headers=headers),
        await down.get(session, headers=headers),
        await down.patch(session, json={"status": "canceled"}, headers=headers),
    ):
        assert (reply.status_code, reply.json()) == (503, V1_DOWN)
    document = (await down.get("/openapi.json")).json()
    for path, item in document["paths"].items():
        if not path.startswith("/v1/push/"):
            continue  # what needs no storage cannot be down with it
        for operation in item.values():
            schema = operation["responses"]["503"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}


def _message(kind: MessageKind) -> dict[str, str]:
    return {"messageId": new_message_id(kind, 1_790_000_000_000), "jwt": "x.y.z"}


async def test_the_device_face_answers_crest_503(down: httpx.AsyncClient) -> None:
    for action, body in (
        ("pending", DEVICE_BODY),
        ("refresh", {**DEVICE_BODY, "username": "alice"}),
        ("authenticate", _message(MessageKind.AUTHENTICATE)),
        ("register", _message(MessageKind.REGISTER)),
    ):
        reply = await _device_post(down, action, body)
        assert (reply.status_code, reply.json()) == (503, CREST_DOWN), action


async def test_an_outage_is_logged_once_without_a_traceback(
    down: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(5):
        assert (await down.post(SESSIONS, json={}, headers={"X-API-Key": "k"})).status_code == 503
        assert (await _device_post(down, "pending", DEVICE_BODY)).status_code == 503
    assert _errors(caplog) == ["storage is unavailable"]
    assert _tracebacks(caplog) == []
    (first,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert first.fields["reason"]  # type: ignore[attr-defined]


# back by itself (PostgreSQL: connections refused, then allowed again) ---------------------------


async def _allow_connections(database: str, allowed: bool) -> None:
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
    finally:
        await admin.close()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_service_comes_back_and_the_log_says_so(
    client: httpx.AsyncClient, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    api = Api(client, services)
    key = await api.key()
    database = make_url(services.settings.database_url).database
    assert database
    caplog.set_level(logging.INFO)
    await _allow_connections(database, False)
    failed = 0
    try:
        for _ in range(4):
            reply = await api.create_session_response(key, {"user": "alice"})
            assert (reply.status_code, reply.json()) == (503, V1_DOWN)
            failed += 1
    finally:
        await _allow_connections(database, True)
    for _ in range(20):  # a pooled connection killed by the outage may fail once more
        reply = await api.create_session_response(key, {"user": "alice"})
        if reply.status_code != 503:
            break
        failed += 1
    assert reply.status_code == 201, reply.text
    messages = [r.getMessage() for r in caplog.records if r.name == "pushgate.api"]
    assert [m for m in messages if "storage" in m] == [
        "storage is unavailable",
        f"storage is available again: {failed - 1} more requests failed",
    ]
    assert _tracebacks(caplog) == []


# a secret key that does not open what another key sealed ----------------------------------------


async def test_a_wrong_secret_key_is_503_with_a_clear_message(
    client: httpx.AsyncClient,
    services: Services,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = Api(client, services)
    await api.user("/", "alice")
    phone = await api.register("/", "alice")
    key = await api.key()
    other_key = base64.b64encode(b"another key, not the sealing one").decode()
    wrong = build_services(
        Settings(
            database_url=settings.database_url, public_url=settings.public_url, secret_key=other_key
        )
    )
    caplog.set_level(logging.INFO)
    try:
        async with _client(wrong) as misconfigured:
            before = await api.snapshot()
            reply = await misconfigured.post(
                phone.pending_url.removeprefix("http://testserver"),
                json=poll_body(phone.mechanism, api.now_ms()),
            )
            assert reply.status_code == 503
            body = reply.json()
            assert (body["code"], body["reason"]) == (503, "Service Unavailable")
            assert "secret key" in body["message"]
            reply = await misconfigured.post(
                SESSIONS, json={"user": "alice"}, headers={"X-API-Key": key}
            )
            assert reply.status_code == 503
            assert reply.json()["code"] == "internalError"
            assert "secret key" in reply.json()["message"]
            assert await api.snapshot() == before
    finally:
        await wrong.store.aclose()
    assert len(_errors(caplog)) == 1
    assert "secret key" in _errors(caplog)[0]
    assert _tracebacks(caplog) == []
