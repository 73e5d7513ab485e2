"""The relying-party face `/v1/push/sessions` (seed 003, UnifyID PushAuth; security.md §9 A4,
A5, A6): happy paths, fan-out, every validation and auth error, realm isolation. Each refused
request is checked to have written nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from pushgate.services import Services
from tests.api.helpers import SESSIONS, Api, Phone

# UnifyID's fields, then pushgate's (issue 7): always present, null when they do not apply.
SESSION_FIELDS = {
    *("id", "status", "notificationCount", "detail", "expiresAt", "updatedAt"),
    *("pushType", "failureCount", "denyReason"),
}
DAY_MS = 86_400_000


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def _alice(api: Api, realm: str = "/") -> tuple[str, Phone]:
    await api.user(realm, "alice")
    return await api.key(realm), await api.register(realm, "alice")


def _invalid(response: httpx.Response, case: str) -> None:
    assert response.status_code == 400, (case, response.text)
    body = response.json()
    assert set(body) == {"code", "message"}, case
    assert body["code"] == "invalidRequest", (case, body)
    assert isinstance(body["message"], str) and body["message"], case


# create and read -----------------------------------------------------------------------------


async def test_create_returns_201_with_the_unifyid_session_object(api: Api) -> None:
    key, _phone = await _alice(api)
    now = api.now_ms()

    response = await api.create_session_response(key, {"user": "alice"})

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert set(data) == SESSION_FIELDS
    assert str(uuid.UUID(data["id"])) == data["id"]
    assert data["status"] == "sent"
    assert data["notificationCount"] == 1
    assert data["detail"] is None
    assert (data["pushType"], data["failureCount"], data["denyReason"]) == ("default", 0, None)
    assert data["expiresAt"] == _iso(now + DAY_MS)
    assert data["updatedAt"] == _iso(now)
    assert await api.count("sessions") == 1
    assert await api.count("notifications", session_id=data["id"]) == 1
    assert await api.audit_events(data["id"]) == ["session.created"]


async def test_get_returns_the_same_session(api: Api) -> None:
    key, _phone = await _alice(api)
    created = await api.create_session(key, "alice", notification={"title": "t"})

    response = await api.get_session(key, created["id"])

    assert response.status_code == 200
    assert response.json() == created


async def test_notification_fields_reach_the_push(api: Api) -> None:
    key, phone = await _alice(api)
    notification = {"title": "Log in?", "subtitle": "Bank", "body": "From Paris", "payload": "{}"}

    await api.create_session(key, "alice", notification=notification)

    push = await api.push(phone)
    assert push.message == "From Paris"
    assert json.loads(push.claims["p"]) == notification


async def test_default_title_when_no_notification(api: Api) -> None:
    key, phone = await _alice(api)
    await api.create_session(key, "alice")
    push = await api.push(phone)
    assert push.message == "Sign-in request"
    assert json.loads(push.claims["p"]) == {"title": "Sign-in request"}


@pytest.mark.parametrize(
    ("fields", "lifetime_s"),
    [
        pytest.param({}, 86_400, id="omitted"),
        pytest.param({"secondsToExpire": 0}, 86_400, id="zero"),
        pytest.param({"secondsToExpire": None}, 86_400, id="null"),
        pytest.param({"secondsToExpire": 1}, 1, id="one"),
        pytest.param({"secondsToExpire": 600}, 600, id="600"),
        pytest.param({"secondsToExpire": 2_592_000}, 2_592_000, id="max"),
    ],
)
async def test_seconds_to_expire(api: Api, fields: dict[str, object], lifetime_s: int) -> None:
    key, phone = await _alice(api)
    now = api.now_ms()

    data = await api.create_session(key, "alice", **fields)

    assert data["expiresAt"] == _iso(now + lifetime_s * 1000)
    assert (await api.push(phone)).claims["t"] == str(lifetime_s)


# fan-out -------------------------------------------------------------------------------------


async def test_fan_out_notifies_every_device_of_the_user_and_one_answer_ends_it(api: Api) -> None:
    await api.user("/", "alice")
    await api.user("/", "bob")
    key = await api.key()
    phones = [await api.register("/", "alice") for _ in range(3)]
    bob = await api.register("/", "bob")

    session = await api.create_session(key, "alice")

    assert session["notificationCount"] == 3
    assert await api.count("notifications", session_id=session["id"]) == 3
    pushes = [await api.push(phone) for phone in phones]
    assert len({push.message_id for push in pushes}) == 3
    assert len({push.claims["c"] for push in pushes}) == 3
    assert await api.pending(bob) == []

    assert (await api.answer(phones[1], pushes[1])).status_code == 200

    assert await api.status(key, session["id"]) == "accepted"
    for phone in phones:
        assert await api.pending(phone) == []
    # The other devices' pushes can no longer answer.
    before = await api.snapshot()
    for index in (0, 2):
        response = await api.answer(phones[index], pushes[index], approve=False)
        assert response.status_code == 400
    assert await api.snapshot() == before
    assert await api.terminal_events(session["id"]) == ["session.answered"]


async def test_unknown_user_and_user_without_devices_get_an_error_session(api: Api) -> None:
    await api.user("/", "nodevice")
    key = await api.key()
    now = api.now_ms()

    unknown = await api.create_session(key, "nobody")
    bare = await api.create_session(key, "nodevice")

    for data in (unknown, bare):
        assert data["status"] == "error"
        assert data["notificationCount"] == 0
        assert data["expiresAt"] == _iso(now + DAY_MS)
        assert (await api.get_session(key, data["id"])).json() == data
    # Indistinguishable apart from the id.
    assert {k: v for k, v in unknown.items() if k != "id"} == {
        k: v for k, v in bare.items() if k != "id"
    }
    assert await api.count("notifications") == 0


# cancel --------------------------------------------------------------------------------------


async def test_cancel_while_sent(api: Api) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice")
    push = await api.push(phone)
    api.advance(5)

    response = await api.cancel(key, session["id"])

    assert response.status_code == 200
    data = response.json()
    assert set(data) == SESSION_FIELDS
    assert (data["id"], data["status"]) == (session["id"], "canceled")
    assert data["updatedAt"] == _iso(api.now_ms())
    assert data["expiresAt"] == session["expiresAt"]
    assert await api.status(key, session["id"]) == "canceled"
    assert await api.pending(phone) == []
    assert (await api.answer(phone, push)).status_code == 400
    assert await api.status(key, session["id"]) == "canceled"
    assert await api.terminal_events(session["id"]) == ["session.canceled"]


async def _ended(api: Api, key: str, phone: Phone, how: str) -> str:
    if how == "error":
        return str((await api.create_session(key, "nobody"))["id"])
    session = await api.create_session(key, "alice", secondsToExpire=60)
    if how == "expired":
        api.advance(60)
    elif how == "canceled":
        assert (await api.cancel(key, session["id"])).status_code == 200
    else:
        push = await api.push(phone)
        answered = await api.answer(phone, push, approve=how == "accepted")
        assert answered.status_code == 200
    return str(session["id"])


@pytest.mark.parametrize("how", ["accepted", "rejected", "canceled", "expired", "error"])
async def test_cancel_after_the_end_is_409(api: Api, how: str) -> None:
    key, phone = await _alice(api)
    session_id = await _ended(api, key, phone, how)
    assert await api.status(key, session_id) == how  # settles an expiry before the snapshot
    before = await api.snapshot()

    response = await api.cancel(key, session_id)

    assert response.status_code == 409
    assert response.json()["code"] == "badRequest"
    assert set(response.json()) == {"code", "message"}
    assert await api.snapshot() == before
    assert await api.status(key, session_id) == how


BAD_PATCH_BODIES: list[tuple[str, object]] = [
    ("accepted", {"status": "accepted"}),
    ("rejected", {"status": "rejected"}),
    ("expired", {"status": "expired"}),
    ("sent", {"status": "sent"}),
    ("upper", {"status": "CANCELED"}),
    ("british", {"status": "cancelled"}),
    ("empty", {"status": ""}),
    ("null", {"status": None}),
    ("int", {"status": 1}),
    ("list", {"status": ["canceled"]}),
    ("missing", {}),
    ("extra-field", {"status": "canceled", "detail": "x"}),
    ("array", ["canceled"]),
    ("string", "canceled"),
    ("no-body", b""),
    ("truncated", b'{"status": "canceled"'),
]


async def test_patch_with_anything_but_canceled_is_400(api: Api) -> None:
    key, _phone = await _alice(api)
    session = await api.create_session(key, "alice")
    before = await api.snapshot()

    for name, body in BAD_PATCH_BODIES:
        _invalid(await api.patch_session(key, session["id"], body), name)
    assert await api.snapshot() == before
    assert await api.status(key, session["id"]) == "sent"


async def test_unknown_or_malformed_id_is_404(api: Api) -> None:
    key, _phone = await _alice(api)
    await api.create_session(key, "alice")
    before = await api.snapshot()

    for session_id in (
        str(uuid.uuid4()),
        "abc",
        "0" * 300,
        "1%27%20OR%20%271%27%3D%271",
        "%00",
        "%2e%2e",
    ):
        for response in (
            await api.get_session(key, session_id),
            await api.cancel(key, session_id),
        ):
            assert response.status_code == 404, session_id
            assert response.json()["code"] == "badRequest"
            assert set(response.json()) == {"code", "message"}
    assert await api.snapshot() == before


# validation of create (A4, A6) ---------------------------------------------------------------

BAD_CREATE_BODIES: list[tuple[str, object]] = [
    ("negative", {"user": "alice", "secondsToExpire": -1}),
    ("very-negative", {"user": "alice", "secondsToExpire": -86_400}),
    ("fraction", {"user": "alice", "secondsToExpire": 1.5}),
    ("float", {"user": "alice", "secondsToExpire": 60.0}),
    ("string", {"user": "alice", "secondsToExpire": "60"}),
    ("bool", {"user": "alice", "secondsToExpire": True}),
    ("list", {"user": "alice", "secondsToExpire": [60]}),
    ("over-30-days", {"user": "alice", "secondsToExpire": 2_592_001}),
    ("huge", {"user": "alice", "secondsToExpire": 10**30}),
    ("no-user", {}),
    ("empty-user", {"user": ""}),
    ("null-user", {"user": None}),
    ("int-user", {"user": 42}),
    ("list-user", {"user": ["alice"]}),
    ("long-user", {"user": "a" * 257}),
    ("extra-field", {"user": "alice", "extra": 1}),
    ("misspelt-field", {"user": "alice", "secondstoexpire": 60}),
    ("notification-string", {"user": "alice", "notification": "hello"}),
    ("notification-list", {"user": "alice", "notification": []}),
    ("title-int", {"user": "alice", "notification": {"title": 1}}),
    ("title-long", {"user": "alice", "notification": {"title": "x" * 257}}),
    ("body-long", {"user": "alice", "notification": {"body": "x" * 1025}}),
    ("payload-object", {"user": "alice", "notification": {"payload": {"a": 1}}}),
    ("notification-extra", {"user": "alice", "notification": {"sound": "x"}}),
    (
        "push-over-3kb",
        {
            "user": "alice",
            "notification": {
                "title": "t" * 256,
                "subtitle": "s" * 256,
                "body": "b" * 1024,
                "payload": "p" * 2048,
            },
        },
    ),
    ("array", ["alice"]),
    ("string-body", "alice"),
    ("null-body", None),
    ("no-body", b""),
    ("truncated", b'{"user": "alice"'),
    ("trailing-comma", b'{"user": "alice",}'),
    ("invalid-utf8", b'{"user": "al\xffice"}'),
    ("deep", b'{"user": "alice", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"),
]


async def test_invalid_create_is_400_and_writes_nothing(api: Api) -> None:
    key, phone = await _alice(api)
    before = await api.snapshot()

    for name, body in BAD_CREATE_BODIES:
        _invalid(await api.create_session_response(key, body), name)
    assert await api.snapshot() == before
    assert await api.pending(phone) == []


async def test_create_body_over_64_kib_is_413(api: Api) -> None:
    key, _phone = await _alice(api)
    before = await api.snapshot()

    response = await api.create_session_response(key, {"user": "alice", "pad": "x" * 65_536})

    assert response.status_code == 413
    assert response.json() == {
        "code": "invalidRequest",
        "message": "request body exceeds 65536 bytes",
    }
    assert await api.snapshot() == before


async def test_chunked_create_body_over_64_kib_is_413(api: Api) -> None:
    key, _phone = await _alice(api)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"user": "alice", "pad": "'
        for _ in range(65):
            yield b"x" * 1024
        yield b'"}'

    before = await api.snapshot()

    response = await api.client.post(
        SESSIONS,
        content=chunks(),
        headers={"Content-Type": "application/json", "X-API-Key": key},
    )

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json() == {
        "code": "invalidRequest",
        "message": "request body exceeds 65536 bytes",
    }
    assert await api.snapshot() == before


# authentication ------------------------------------------------------------------------------


async def test_missing_or_bad_api_key_is_401_on_every_operation(api: Api) -> None:
    key, _phone = await _alice(api)
    session = await api.create_session(key, "alice")
    url = f"{SESSIONS}/{session['id']}"
    before = await api.snapshot()

    for bad_key in (None, "", "pgk_" + "A" * 43, key[:-1], key + "x", "x" * 300, f"Bearer {key}"):
        headers = {} if bad_key is None else {"X-API-Key": bad_key}
        for response in (
            await api.client.post(SESSIONS, json={"user": "alice"}, headers=headers),
            await api.client.get(url, headers=headers),
            await api.client.patch(url, json={"status": "canceled"}, headers=headers),
        ):
            assert response.status_code == 401, bad_key
            assert response.json() == {
                "code": "unauthorized",
                "message": "a valid X-API-Key header is required",
            }
    assert await api.snapshot() == before


async def test_a_key_is_not_a_session_id_or_a_query_parameter(api: Api) -> None:
    key, _phone = await _alice(api)
    response = await api.client.post(f"{SESSIONS}?X-API-Key={key}", json={"user": "alice"})
    assert response.status_code == 401
    response = await api.client.post(
        SESSIONS, json={"user": "alice"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 401


# realms --------------------------------------------------------------------------------------


async def test_a_key_of_one_realm_never_sees_another_realms_sessions(api: Api) -> None:
    alpha = await api.realm("alpha")
    root_key, root_phone = await _alice(api, "/")
    alpha_key, alpha_phone = await _alice(api, alpha)
    root_session = await api.create_session(root_key, "alice")
    alpha_session = await api.create_session(alpha_key, "alice")
    before = await api.snapshot()

    for key, foreign in ((alpha_key, root_session), (root_key, alpha_session)):
        for response in (
            await api.get_session(key, foreign["id"]),
            await api.cancel(key, foreign["id"]),
        ):
            assert response.status_code == 404
            assert response.json()["code"] == "badRequest"
    assert await api.snapshot() == before
    assert await api.status(root_key, root_session["id"]) == "sent"
    assert await api.status(alpha_key, alpha_session["id"]) == "sent"
    # Each alice got the push of her own realm only.
    root_push, alpha_push = await api.push(root_phone), await api.push(alpha_phone)
    assert root_push.message_id != alpha_push.message_id


async def test_a_session_only_reaches_users_of_the_keys_realm(api: Api) -> None:
    alpha = await api.realm("alpha")
    await api.user("/", "bob")
    bob = await api.register("/", "bob")
    alpha_key = await api.key(alpha)

    data = await api.create_session(alpha_key, "bob")

    assert (data["status"], data["notificationCount"]) == ("error", 0)
    assert await api.pending(bob) == []
