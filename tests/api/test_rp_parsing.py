"""How the `/v1` face reads a request: the key first, then a strict JSON body."""

from __future__ import annotations

import httpx
import pytest

from pushgate.services import Services
from tests.api.helpers import Api


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


async def test_the_key_is_checked_before_the_body(api: Api) -> None:
    reply = await api.client.post(
        "/v1/push/sessions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert reply.status_code == 401
    assert reply.json()["code"] == "unauthorized"


async def test_duplicate_member_names_are_refused(api: Api) -> None:
    key = await api.key()
    reply = await api.client.post(
        "/v1/push/sessions",
        content=b'{"user": "alice", "user": "mallory"}',
        headers={"X-API-Key": key, "content-type": "application/json"},
    )
    assert reply.status_code == 400
    assert reply.json()["code"] == "invalidRequest"
    assert await api.count("sessions") == 0


@pytest.mark.parametrize("media_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_that_is_not_json_is_415(api: Api, media_type: str) -> None:
    key = await api.key()
    reply = await api.client.post(
        "/v1/push/sessions",
        content=b'{"user": "alice"}',
        headers={"X-API-Key": key, "content-type": media_type},
    )
    assert reply.status_code == 415
    assert reply.json()["code"] == "invalidRequest"
    assert await api.count("sessions") == 0


async def test_json_with_a_charset_is_fine(api: Api) -> None:
    key = await api.key()
    reply = await api.client.post(
        "/v1/push/sessions",
        content=b'{"user": "alice"}',
        headers={"X-API-Key": key, "content-type": "application/json; charset=utf-8"},
    )
    assert reply.status_code == 201


async def test_only_the_canonical_session_id_form_is_found(api: Api) -> None:
    key = await api.key()
    session = await api.create_session(key, "alice")
    canonical = str(session["id"])
    assert (await api.get_session(key, canonical)).status_code == 200
    for variant in (canonical.upper(), canonical.replace("-", ""), "{" + canonical + "}"):
        reply = await api.get_session(key, variant)
        assert reply.status_code == 404, variant
