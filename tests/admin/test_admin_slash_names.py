"""Names with `/` (and other escapes) in admin API paths (issue 10, docs/ADMIN.md): routed on
the percent-encoded path, each parameter decoded after the match, on both stores."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.routing import Match

from pushgate.api import admin
from pushgate.api.raw_path import RawPathRoute, routing_form
from pushgate.services import Services
from tests.admin.test_api import admin_key, call
from tests.api.helpers import Api
from tests.ops.helpers import series

USERS = "/admin/realms/root/users"
USER = "/admin/realms/{realm}/users/{username}"


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


async def test_a_username_with_a_slash_is_written_with_2f(api: Api) -> None:
    key = await admin_key(api.services)
    created = await call(api.client, "POST", USERS, key, {"username": "team/alice"}, 201)
    assert created["username"] == "team/alice"
    phone = await api.register("/", "team/alice")
    url = f"{USERS}/team%2Falice"

    shown = await call(api.client, "GET", url, key)
    assert shown["username"] == "team/alice" and shown["devices"] == 1
    assert (await call(api.client, "GET", f"{USERS}/team%2falice", key))["username"] == (
        "team/alice"
    )
    [device] = (await call(api.client, "GET", f"{url}/devices", key))["devices"]
    assert device["mechanismUid"] == phone.mechanism.mechanism_uid
    blocked = await call(api.client, "POST", f"{url}/devices/{device['id']}/block", key)
    assert blocked["status"] == "blocked"
    assert (await call(api.client, "POST", f"{url}/lock", key))["locked"] is True
    assert (await call(api.client, "POST", f"{url}/unlock", key))["locked"] is False
    assert (await call(api.client, "DELETE", f"{url}/opt-outs", key))["username"] == "team/alice"
    removed = await call(api.client, "DELETE", url, key)
    assert removed == {"realm": "/", "username": "team/alice", "removed": True}
    await call(api.client, "GET", url, key, status=404)


async def test_a_2f_never_reaches_another_route_or_user(api: Api) -> None:
    key = await admin_key(api.services)
    for username in ("team", "team/lock"):
        await call(api.client, "POST", USERS, key, {"username": username}, 201)
    # Decoded first, this was POST .../users/team/lock: it locked `team`.
    assert (await call(api.client, "GET", f"{USERS}/team%2Flock", key))["username"] == "team/lock"
    locked = await call(api.client, "POST", f"{USERS}/team%2Flock/lock", key)
    assert locked["username"] == "team/lock" and locked["locked"] is True
    assert (await call(api.client, "GET", f"{USERS}/team", key))["locked"] is False
    # A `%` in a name is `%25`; `%252F` is the three characters `%2F`, not a `/`.
    await call(api.client, "POST", USERS, key, {"username": "50%off"}, 201)
    assert (await call(api.client, "GET", f"{USERS}/50%25off", key))["username"] == "50%off"
    await call(api.client, "GET", f"{USERS}/team%252Flock", key, status=404)


async def test_encoded_static_parts_realms_and_journeys(api: Api) -> None:
    key = await admin_key(api.services)
    await api.realm("alpha")
    await api.user("/alpha", "team/bob")
    shown = await call(api.client, "GET", "/%61dmin/realms/%2Falpha/users/team%2Fbob", key)
    assert shown["realm"] == "/alpha" and shown["username"] == "team/bob"
    assert (await call(api.client, "GET", "/admin/%72ealms/alpha", key))["realm"] == "/alpha"

    exported = await call(api.client, "GET", "/admin/realms/root/journeys/PushAuthentication", key)
    renamed = {**exported, "_id": "Push Flow"}
    await call(api.client, "POST", "/admin/realms/root/journeys", key, renamed, 201)
    again = await call(api.client, "GET", "/admin/realms/root/journeys/Push%20Flow", key)
    assert again["_id"] == "Push Flow"
    error = await call(
        api.client, "GET", "/admin/realms/root/journeys/Push%2FFlow", key, status=400
    )
    assert error["code"] == "invalidRequest"


@pytest.mark.parametrize(
    "path",
    [
        f"{USERS}/%FF",  # not UTF-8
        f"{USERS}/caf%C3",  # a character cut short
        f"{USERS}/%FF/lock",
        "/%61dmin/realms/root/users/%C3%28",
        f"{USERS}/%ZZ",  # no escape at all: the name `%ZZ`, which does not exist
        f"{USERS}/%",
    ],
)
async def test_bad_escapes_are_a_json_404(api: Api, path: str) -> None:
    key = await admin_key(api.services)
    await api.user("/", "\ufffd")  # what a lenient decoding would make of `%FF`
    before = await api.snapshot()
    for method in ("GET", "POST", "DELETE"):
        response = await api.client.request(method, path, headers=key)
        assert response.status_code in (404, 405), (method, path, response.text)
        assert set(response.json()) == {"code", "message"}
    assert await api.snapshot() == before
    assert (await call(api.client, "GET", f"{USERS}/%EF%BF%BD", key))["username"] == "\ufffd"


async def test_durations_keep_the_route_template(api: Api) -> None:
    key = await admin_key(api.services)
    await api.user("/", "team/alice")
    await call(api.client, "GET", f"{USERS}/team%2Falice", key)
    await call(api.client, "GET", f"{USERS}/%FF", key, status=404)
    text = (await api.client.get("/metrics")).text
    routes = {
        labels["route"] for labels in series(text, "pushgate_http_request_duration_seconds_count")
    }
    assert USER in routes and "unmatched" in routes
    assert not any("alice" in route or "%" in route for route in routes)


def _user_route() -> RawPathRoute:
    [route] = [r for r in admin.routes if isinstance(r, RawPathRoute) and r.path == USER]
    return route


def test_every_admin_route_has_a_name_of_its_own() -> None:
    names = [r.name for r in admin.routes if isinstance(r, RawPathRoute)]
    assert len(names) == len(set(names)) > 20


def _scope(path: str, raw: bytes, root_path: str = "") -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "raw_path": raw, "root_path": root_path}


def test_url_path_for_writes_what_the_route_reads() -> None:
    route = _user_route()
    path = route.url_path_for("show_user", realm="root", username="team/50%")
    assert path == f"{USERS}/team%2F50%25"
    match, child = route.matches(_scope(f"{USERS}/team/50%", path.encode()))
    assert match is Match.FULL
    assert child["path_params"] == {"realm": "root", "username": "team/50%"}


@pytest.mark.parametrize(
    ("path", "raw", "root_path"),
    [
        ("/pg" + USERS + "/team/alice", b"/pg/admin/realms/root/users/team%2Falice", "/pg"),
        ("/pg" + USERS + "/team/alice", b"/admin/realms/root/users/team%2Falice", "/pg"),
    ],
)
def test_a_root_path_in_raw_path_or_not(path: str, raw: bytes, root_path: str) -> None:
    match, child = _user_route().matches(_scope(path, raw, root_path))
    assert match is Match.FULL
    assert child["path_params"]["username"] == "team/alice"


async def test_trailing_slashes_redirect_only_to_the_same_name(api: Api) -> None:
    key = await admin_key(api.services)
    for path in ("/admin/realms/", "/admin/realm%73/"):
        response = await api.client.get(path, headers=key)
        assert response.status_code == 307
        assert response.headers["location"] == "http://testserver/admin/realms"
    # Redirected to the decoded path, these would name the devices of `a`, or `\ufffd`.
    for path in (f"{USERS}/a%2Fdevices/", f"{USERS}/%FF/"):
        response = await api.client.get(path, headers=key)
        assert response.status_code == 404
        assert set(response.json()) == {"code", "message"}


def test_routing_form() -> None:
    assert routing_form("/%61dmin/a%2fb/50%25/caf%C3%A9/%2%46/%ZZ") == (
        "/admin/a%2Fb/50%25/café/%252F/%25ZZ"
    )
    assert routing_form("/x/%FF") is None
    assert routing_form("/x/%C3") is None
