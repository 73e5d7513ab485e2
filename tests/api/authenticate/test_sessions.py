"""The login session a journey ends with (AM's SSO token): `sessions?_action=validate`,
`getSessionInfo` and `logout` as the ForgeRock SDKs call them, and CORS for SDKs on other
origins (`PUSHGATE_CORS_ORIGINS`)."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from sqlalchemy import select

from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.store import schema
from tests.api.authenticate.flow import SESSIONS, URL, Rest, fill, make_user
from tests.api.helpers import Api, connect

APP = "https://app.example.com"
# What `SessionManager.logout` of the JS SDK sends: the cookie (credentials: include).
LOGOUT_HEADERS = {
    "Accept-API-Version": "protocol=1.0,resource=2.0",
    "X-Requested-With": "forgerock-sdk",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"cors_origins": f"{APP}, https://other.example.org/"})


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


@pytest.fixture
def rest(api: Api) -> Rest:
    return Rest(api)


@pytest.fixture
async def token(rest: Rest, services: Services) -> str:
    """A login: a user without a device skips the registration."""
    await make_user(services, "erin")
    options = await rest.to_options_or_wait("erin")
    done = await rest.submit(options, 2)  # Skip
    found: str = done["tokenId"]
    return found


async def action(client: httpx.AsyncClient, name: str, **kwargs: object) -> httpx.Response:
    return await client.post(f"{SESSIONS}?_action={name}", **kwargs)  # type: ignore[arg-type]


async def test_validate_by_header_cookie_or_body(api: Api, token: str, services: Services) -> None:
    valid = {"valid": True, "uid": "erin", "realm": "/"}
    by_cookie = await action(api.client, "validate")  # the client's jar holds the cookie
    assert by_cookie.json() == valid
    api.client.cookies.clear()
    header = await action(api.client, "validate", headers={"iPlanetDirectoryPro": token})
    assert header.json() == valid
    body = await action(api.client, "validate", json={"tokenId": token})
    assert body.json() == valid
    for junk in ("", "x" * 43, token + "x", "é" * 500):
        found = await action(api.client, "validate", json={"tokenId": junk})
        assert found.status_code == 200 and found.json() == {"valid": False}
    assert (await action(api.client, "validate")).json() == {"valid": False}


async def test_only_the_token_digest_is_stored(api: Api, token: str) -> None:
    async with connect(api.services) as conn:
        rows = (await conn.execute(select(schema.login_sessions))).mappings().all()
    assert [row["digest"] for row in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in repr(rows)
    assert len(token) >= 43  # 32 bytes of randomness, base64url


async def test_session_info(api: Api, token: str) -> None:
    info = (await action(api.client, "getSessionInfo")).json()
    assert info["username"] == "erin" and info["realm"] == "/"
    assert info["maxSessionExpirationTime"].endswith("Z")
    api.client.cookies.clear()
    refused = await action(api.client, "getSessionInfo")
    assert refused.status_code == 401
    assert refused.json() == {"code": 401, "reason": "Unauthorized", "message": "Access Denied"}


async def test_logout_as_the_js_sdk_does(api: Api, token: str, services: Services) -> None:
    # SessionManager.logout's URL ends the path with a slash.
    url = f"{SESSIONS}/?_action=logout"
    response = await api.client.post(url, headers=LOGOUT_HEADERS)
    assert response.status_code == 200
    assert response.json() == {"result": "Successfully logged out"}
    assert 'iPlanetDirectoryPro=""' in response.headers["set-cookie"]  # the cookie goes too
    check = await action(api.client, "validate", headers={"iPlanetDirectoryPro": token})
    assert check.json() == {"valid": False}
    again = await action(api.client, "logout", headers={"iPlanetDirectoryPro": token})
    assert again.status_code == 401
    async with services.store.autocommit() as db:
        user = await db.accounts.get_user("/", "erin")
    assert user is not None
    events = await api.audit_events(user.id)
    assert events.count("login.opened") == 1 and events.count("login.closed") == 1


async def test_a_session_expires(api: Api, token: str, services: Services) -> None:
    api.advance(services.settings.login_session_seconds)
    check = await action(api.client, "validate", headers={"iPlanetDirectoryPro": token})
    assert check.json() == {"valid": False}
    assert (await action(api.client, "logout")).status_code == 401


async def test_an_unknown_action(api: Api) -> None:
    response = await action(api.client, "refresh")
    assert response.status_code == 400
    assert response.json()["message"] == "Action 'refresh' not implemented for this resource"


@pytest.mark.parametrize("path", [URL, f"{SESSIONS}?_action=logout"])
async def test_cors_preflight_for_a_listed_origin(api: Api, path: str) -> None:
    response = await api.client.options(
        path,
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "accept-api-version,content-type,x-requested-with",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-credentials"] == "true"
    allowed = response.headers["access-control-allow-headers"].lower()
    assert {"accept-api-version", "content-type", "x-requested-with"} <= {
        h.strip() for h in allowed.split(",")
    }


async def test_cors_refuses_other_origins(api: Api) -> None:
    preflight = await api.client.options(
        URL, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    step = await api.client.post(URL, headers={"Origin": "https://evil.example"})
    assert step.status_code == 200 and "access-control-allow-origin" not in step.headers


async def test_cors_on_the_steps_themselves(api: Api, services: Services) -> None:
    await make_user(services, "fay")
    rest = Rest(api)
    page = await rest.begin()
    response = await api.client.post(
        URL, json=fill(page, "fay", "wrong"), headers={"Origin": "https://other.example.org"}
    )
    assert response.status_code == 401  # refusals carry the headers too
    assert response.headers["access-control-allow-origin"] == "https://other.example.org"
    assert response.headers["vary"] == "Origin"
