"""The admin API `/admin/...` over ASGI on both stores: admin keys and their scopes, the
operations of the CLI, the `{code, message}` errors, and nothing half-written on a refusal."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from pushgate.services import Services
from pushgate.store import schema
from tests.api.helpers import Api, connect
from tests.support import FakeClock

USERS = "/admin/realms/root/users"


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


async def admin_key(services: Services, *scopes: str) -> dict[str, str]:
    issued = await services.admin.create_admin_key(scopes or ("all",))
    return {"Authorization": f"Bearer {issued.key}"}


async def snapshot(api: Api, key: dict[str, str]) -> object:
    """The database after one use of `key` (its first use records when it was used)."""
    await api.client.get("/admin/realms", headers=key)
    return await api.snapshot()


async def call(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    headers: dict[str, str],
    body: Any = None,
    status: int = 200,
) -> Any:
    response = await client.request(method, url, headers=headers, json=body)
    assert response.status_code == status, response.text
    return response.json()


async def test_realms_create_show_settings_and_remove(
    client: httpx.AsyncClient, services: Services
) -> None:
    key = await admin_key(services)
    created = await call(client, "POST", "/admin/realms", key, {"realm": "alpha"}, 201)
    assert created["realm"] == "/alpha"
    listed = await call(client, "GET", "/admin/realms", key)
    assert [r["realm"] for r in listed["realms"]] == ["/", "/alpha"]
    changed = await call(
        client, "PATCH", "/admin/realms/alpha", key, {"defaultPushType": "challenge"}
    )
    assert changed["settings"]["defaultPushType"] == "challenge"
    assert changed["contents"]["users"] == 0
    await call(client, "DELETE", "/admin/realms/alpha", key)
    error = await call(client, "GET", "/admin/realms/alpha", key, status=404)
    assert error == {"code": "badRequest", "message": "realm /alpha does not exist"}


async def test_a_non_empty_realm_and_the_root_stay(api: Api) -> None:
    key = await admin_key(api.services)
    await api.realm("alpha")
    await api.user("/alpha", "bob")
    before = await snapshot(api, key)
    error = await call(api.client, "DELETE", "/admin/realms/alpha", key, status=409)
    assert "not empty (1 users)" in error["message"]
    await call(api.client, "DELETE", "/admin/realms/root", key, status=400)
    assert await api.snapshot() == before


async def test_users_and_devices(api: Api) -> None:
    key = await admin_key(api.services)
    await call(api.client, "POST", USERS, key, {"username": "alice", "password": "pw"}, 201)
    phone = await api.register("/", "alice")
    [device] = (await call(api.client, "GET", f"{USERS}/alice/devices", key))["devices"]
    assert device["mechanismUid"] == phone.mechanism.mechanism_uid
    assert "secret" not in device
    url = f"{USERS}/alice/devices/{device['id']}"

    renamed = await call(api.client, "PATCH", url, key, {"name": "Work phone"})
    assert renamed["name"] == "Work phone"
    assert (await call(api.client, "POST", f"{url}/block", key))["status"] == "blocked"
    assert (await call(api.client, "POST", f"{url}/unblock", key))["status"] == "active"
    shown = await call(api.client, "GET", f"{USERS}/alice", key)
    assert shown["devices"] == 1 and shown["hasPassword"] is True

    locked = await call(api.client, "POST", f"{USERS}/alice/lock", key)
    assert locked["locked"] is True
    assert (await call(api.client, "POST", f"{USERS}/alice/unlock", key))["locked"] is False
    assert (await call(api.client, "DELETE", url, key))["status"] == "removed"
    assert (await call(api.client, "GET", f"{USERS}/alice/devices", key))["devices"] == []
    await call(api.client, "DELETE", url, key, status=404)
    assert (await call(api.client, "DELETE", f"{USERS}/alice/opt-outs", key))["cleared"] == 0
    await call(api.client, "DELETE", f"{USERS}/alice", key)
    await call(api.client, "GET", f"{USERS}/alice", key, status=404)
    assert (await call(api.client, "GET", USERS, key))["users"] == []

    [record] = await api.services.admin.list_admin_keys()
    events = await _audit_actors(api)
    for event in ("device.renamed", "device.blocked", "device.removed", "user.removed"):
        assert (event, f"admin:{record.id}") in events


async def _audit_actors(api: Api) -> list[tuple[str, str | None]]:
    async with connect(api.services) as conn:
        found = await conn.execute(select(schema.audit.c.event, schema.audit.c.actor))
        return [(event, actor) for event, actor in found]


async def test_locking_a_user_cancels_its_pending_sessions(api: Api) -> None:
    key = await admin_key(api.services)
    await api.user("/", "alice")
    await api.register("/", "alice")
    rp = await api.key()
    session = await api.create_session(rp, "alice")
    locked = await call(api.client, "POST", f"{USERS}/alice/lock", key)
    assert locked["canceledSessions"] == [session["id"]]
    assert await api.status(rp, session["id"]) == "canceled"
    again = await api.create_session(rp, "alice")
    assert again["status"] == "error"  # a locked user is sent nothing


async def test_a_user_with_a_pending_session_is_not_removed(api: Api) -> None:
    key = await admin_key(api.services)
    await api.user("/", "alice")
    await api.register("/", "alice")
    await api.create_session(await api.key(), "alice")
    before = await snapshot(api, key)
    error = await call(api.client, "DELETE", f"{USERS}/alice", key, status=409)
    assert "pending session" in error["message"]
    assert await api.snapshot() == before


async def test_unknown_things_are_404_and_bad_bodies_400(api: Api) -> None:
    key = await admin_key(api.services)
    await api.user("/", "alice")
    before = await snapshot(api, key)
    for method, url in (
        ("GET", f"{USERS}/nobody"),
        ("DELETE", f"{USERS}/nobody"),
        ("GET", f"{USERS}/nobody/devices"),
        ("POST", f"{USERS}/alice/devices/nope/block"),
        ("DELETE", f"{USERS}/alice/devices/nope"),
        ("DELETE", "/admin/api-keys/nope"),
        ("GET", "/admin/realms/nowhere/users"),
        ("DELETE", "/admin/webhooks/nope"),
    ):
        response = await api.client.request(method, url, headers=key)
        assert response.status_code == 404, (method, url, response.text)
        assert set(response.json()) == {"code", "message"}
    for body in (b"[]", b"{", b'{"realm": 1}', b'{"realm": "a", "realm": "b"}'):
        response = await api.client.post(
            "/admin/realms", content=body, headers={**key, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "invalidRequest"
    response = await api.client.patch(
        "/admin/realms/root", json={"maxFailureCount": 0}, headers=key
    )
    assert response.status_code == 400
    response = await api.client.patch(
        f"{USERS}/alice/devices/x", json={"name": "ok", "extra": 1}, headers=key
    )
    assert response.status_code == 400
    assert await api.snapshot() == before


async def test_api_keys_list_and_revoke_with_the_cache_time(api: Api, clock: FakeClock) -> None:
    key = await admin_key(api.services)
    created = await call(
        api.client, "POST", "/admin/realms/root/api-keys", key, {"label": "shop"}, 201
    )
    rp = created["apiKey"]
    assert (
        await api.client.get("/v1/push/sessions/x", headers={"X-API-Key": rp})
    ).status_code == 404
    [listed] = (await call(api.client, "GET", "/admin/api-keys", key))["apiKeys"]
    assert listed["label"] == "shop" and listed["lastUsedAt"] is not None
    assert "apiKey" not in listed

    await call(api.client, "DELETE", f"/admin/api-keys/{created['id']}", key)
    # A process that saw the key may accept it until its cache time runs out; not after.
    clock.advance(api.services.settings.api_key_cache_seconds + 0.001)
    response = await api.client.get("/v1/push/sessions/x", headers={"X-API-Key": rp})
    assert response.status_code == 401
    [listed] = (await call(api.client, "GET", "/admin/api-keys?realm=root", key))["apiKeys"]
    assert listed["revokedAt"] is not None


async def test_last_used_is_written_at_most_once_a_minute(api: Api, clock: FakeClock) -> None:
    issued = await api.services.accounts.create_api_key("/")
    accounts = api.services.accounts
    await accounts.realm_for_api_key(issued.key)
    first = (await api.services.admin.list_api_keys())[0].last_used_ms
    assert first == clock.now_ms()
    clock.advance(30)
    accounts._known_keys.clear()  # as a process whose cache ran out
    await accounts.realm_for_api_key(issued.key)
    assert (await api.services.admin.list_api_keys())[0].last_used_ms == first
    clock.advance(31)
    accounts._known_keys.clear()
    await accounts.realm_for_api_key(issued.key)
    assert (await api.services.admin.list_api_keys())[0].last_used_ms == clock.now_ms()


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer pga_unknown", "Basic abc", "Bearer pgk_" + "x" * 43, "x" * 300],
)
async def test_without_a_valid_admin_key_it_is_401(
    client: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await client.get("/admin/realms", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


async def test_a_relying_party_key_is_no_admin_key(api: Api) -> None:
    rp = await api.key()
    for headers in ({"Authorization": f"Bearer {rp}"}, {"X-API-Key": rp}):
        assert (await api.client.get("/admin/realms", headers=headers)).status_code == 401


async def test_an_admin_key_is_no_relying_party_key(api: Api) -> None:
    issued = await api.services.admin.create_admin_key(["all"])
    response = await api.client.get("/v1/push/sessions/x", headers={"X-API-Key": issued.key})
    assert response.status_code == 401


async def test_a_key_without_the_scope_is_403_and_changes_nothing(api: Api) -> None:
    reader = await admin_key(api.services, "users:read", "realms:read")
    await api.user("/", "alice")
    before = await snapshot(api, reader)
    assert (await api.client.get(USERS, headers=reader)).status_code == 200
    for method, url, body in (
        ("DELETE", f"{USERS}/alice", None),
        ("POST", f"{USERS}/alice/lock", None),
        ("POST", USERS, {"username": "eve"}),
        ("DELETE", "/admin/realms/root", None),
        ("GET", f"{USERS}/alice/devices", None),
        ("GET", "/admin/api-keys", None),
        ("POST", "/admin/realms/root/api-keys", {}),
        ("GET", "/admin/webhooks", None),
        ("GET", "/admin/realms/root/journeys", None),
    ):
        response = await api.client.request(method, url, headers=reader, json=body)
        assert response.status_code == 403, (method, url, response.text)
        assert response.json()["code"] == "forbidden"
        assert "lacks the scope" in response.json()["message"]
    assert await api.snapshot() == before


async def test_a_revoked_admin_key_stops_within_the_cache_time(api: Api, clock: FakeClock) -> None:
    issued = await api.services.admin.create_admin_key(["realms:read"])
    headers = {"Authorization": f"Bearer {issued.key}"}
    assert (await api.client.get("/admin/realms", headers=headers)).status_code == 200
    # Revoked by another process (the CLI): this one's cache still holds the key a while.
    other = api.services.admin.__class__(api.services.store, clock)
    await other.revoke_admin_key(issued.record.id)
    clock.advance(api.services.settings.api_key_cache_seconds + 0.001)
    assert (await api.client.get("/admin/realms", headers=headers)).status_code == 401


async def test_webhooks_and_journeys(api: Api) -> None:
    key = await admin_key(api.services)
    journeys = await call(api.client, "GET", "/admin/realms/root/journeys", key)
    assert [j["name"] for j in journeys["journeys"]] == ["PushAuthentication"]
    exported = await call(api.client, "GET", "/admin/realms/root/journeys/PushAuthentication", key)
    assert exported["_id"] == "PushAuthentication"
    imported = await call(api.client, "POST", "/admin/realms/root/journeys", key, exported, 201)
    assert imported["name"] == "PushAuthentication"
    bad = await api.client.post("/admin/realms/root/journeys", json={"nodes": 1}, headers=key)
    assert bad.status_code == 400

    added = await call(
        api.client,
        "POST",
        "/admin/realms/root/webhooks",
        key,
        {"url": "https://hooks.example.com/in", "events": ["session.accepted"]},
        201,
    )
    assert added["secret"].startswith("whsec_")
    [listed] = (await call(api.client, "GET", "/admin/webhooks", key))["webhooks"]
    assert listed["id"] == added["id"] and "secret" not in listed
    assert (await call(api.client, "GET", "/admin/webhooks/deliveries", key))["deliveries"] == []
    await call(api.client, "DELETE", f"/admin/webhooks/{added['id']}", key)
    assert (await call(api.client, "GET", "/admin/webhooks", key))["webhooks"] == []


async def test_the_audit_trail_shows_who_changed_what(api: Api) -> None:
    key = await admin_key(api.services)
    [record] = await api.services.admin.list_admin_keys()
    await call(api.client, "POST", USERS, key, {"username": "alice"}, 201)
    await call(api.client, "POST", f"{USERS}/alice/lock", key)
    entries = (await call(api.client, "GET", "/admin/audit?realm=root&limit=5", key))["entries"]
    assert entries[-1]["event"] == "user.locked"
    assert entries[-1]["actor"] == f"admin:{record.id}"
    later = await call(api.client, "GET", f"/admin/audit?after={entries[-1]['id']}", key)
    assert later["entries"] == []
    await call(api.client, "GET", "/admin/audit?after=x", key, status=400)
    reader = await admin_key(api.services, "users:read")
    await call(api.client, "GET", "/admin/audit", reader, status=403)


async def test_a_realm_emptied_of_its_users_and_keys_is_removed_with_its_history(
    api: Api,
) -> None:
    key = await admin_key(api.services)
    await api.realm("alpha")
    await api.user("/alpha", "alice")
    await api.register("/alpha", "alice")
    rp = await api.services.accounts.create_api_key("/alpha")
    session = await api.create_session(rp.key, "alice")
    await api.cancel(rp.key, session["id"])
    users = "/admin/realms/alpha/users"

    await call(api.client, "DELETE", f"{users}/alice", key)
    error = await call(api.client, "DELETE", "/admin/realms/alpha", key, status=409)
    assert "1 API keys" in error["message"]
    await call(api.client, "DELETE", f"/admin/api-keys/{rp.id}", key)
    await call(api.client, "DELETE", "/admin/realms/alpha", key)

    assert await api.count("sessions") == 0
    assert await api.count("api_keys") == 0
    assert await api.count("devices") == 0
    assert "realm.removed" in await api.audit_events("/alpha")
