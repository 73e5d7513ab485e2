"""Every limit the `/v1` face enforces comes from the settings, and the OpenAPI document shows
the same numbers (issue #6: the limits were constants in `rp_models.py`, so
PUSHGATE_MAX_SESSION_TTL_SECONDS had no effect on the API)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from pushgate.api import rp_models
from pushgate.api.app import create_app
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.wiring import build_services
from tests.api.helpers import SESSIONS, Api
from tests.support import TEST_SECRET_KEY, FakeClock, empty_database

MAX_TTL = 600
DEFAULT_TTL = 300
MAX_WAIT = 120  # over 99: the old `?wait=` pattern took two digits at most
MAX_BODY = 2048


@pytest.fixture
async def api(database_url: str, clock: FakeClock) -> AsyncIterator[Api]:
    settings = Settings(
        database_url=database_url,
        public_url="http://testserver",
        secret_key=TEST_SECRET_KEY,
        max_session_ttl_seconds=MAX_TTL,
        default_session_ttl_seconds=DEFAULT_TTL,
        max_wait_seconds=MAX_WAIT,
        max_body_bytes=MAX_BODY,
    )
    services: Services = build_services(settings, clock)
    await empty_database(services)
    transport = httpx.ASGITransport(app=create_app(services, close_store=False))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Api(http, services)
    finally:
        await services.store.aclose()


def _ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


async def test_seconds_to_expire_is_bounded_by_the_setting(api: Api) -> None:
    key = await api.key()
    reply = await api.create_session_response(key, {"user": "alice", "secondsToExpire": 601})
    assert reply.status_code == 400
    assert reply.json()["code"] == "invalidRequest"
    assert str(MAX_TTL) in reply.json()["message"]
    assert await api.count("sessions") == 0

    session = await api.create_session(key, "alice", secondsToExpire=MAX_TTL)
    assert _ms(session["expiresAt"]) == api.now_ms() + MAX_TTL * 1000


async def test_the_default_lifetime_is_the_setting(api: Api) -> None:
    key = await api.key()
    for fields in ({}, {"secondsToExpire": 0}, {"secondsToExpire": None}):
        session = await api.create_session(key, "alice", **fields)
        assert _ms(session["expiresAt"]) == api.now_ms() + DEFAULT_TTL * 1000


async def test_wait_is_bounded_by_the_setting(api: Api) -> None:
    key = await api.key()
    session = await api.create_session(key, "alice")  # no phone: finished as `error`
    assert session["status"] == "error"
    url = f"{SESSIONS}/{session['id']}"
    headers = {"X-API-Key": key}
    reply = await api.client.get(f"{url}?wait={MAX_WAIT + 1}", headers=headers)
    assert (reply.status_code, reply.json()["code"]) == (400, "invalidRequest")
    assert str(MAX_WAIT) in reply.json()["message"]
    # A finished session answers at once, however long the wait asked for.
    reply = await api.client.get(f"{url}?wait={MAX_WAIT}", headers=headers)
    assert (reply.status_code, reply.json()["status"]) == (200, "error")


async def test_the_body_cap_is_the_setting(api: Api) -> None:
    key = await api.key()
    body = {"user": "alice", "notification": {"payload": "x" * MAX_BODY}}
    reply = await api.create_session_response(key, body)
    assert reply.status_code == 413
    assert str(MAX_BODY) in reply.json()["message"]


async def test_the_document_shows_the_settings_limits(api: Api) -> None:
    document: dict[str, Any] = (await api.client.get("/openapi.json")).json()
    ttl = document["components"]["schemas"]["SessionCreate"]["properties"]["secondsToExpire"]
    (integer,) = [option for option in ttl["anyOf"] if option.get("type") == "integer"]
    assert (integer["minimum"], integer["maximum"]) == (0, MAX_TTL)
    assert str(DEFAULT_TTL) in ttl["description"]
    get = document["paths"]["/v1/push/sessions/{id}"]["get"]
    (wait,) = [p for p in get["parameters"] if p["name"] == "wait"]
    assert wait["schema"] == {"type": "integer", "minimum": 0, "maximum": MAX_WAIT}


def test_no_limit_constants_are_left_in_the_models() -> None:
    assert not hasattr(rp_models, "MAX_SECONDS_TO_EXPIRE")
    assert not hasattr(rp_models, "MAX_WAIT_SECONDS")
