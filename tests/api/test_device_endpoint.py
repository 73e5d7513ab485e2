"""The device face `POST /json[...]/push/sns/message` (spec forgerock-push.md §3.4, §4;
security.md §9 A2, A3): success is exactly 200 `{}`, every refusal a generic CREST 400 that
changes nothing, bodies over 64 KiB a 413.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from http import HTTPStatus

import httpx
import pytest

from pushgate.protocol import jwt
from pushgate.protocol.challenge import challenge_response
from pushgate.protocol.device_messages import poll_claims
from pushgate.protocol.encoding import b64std_decode
from pushgate.services import Services
from pushgate.simulator import new_device, new_mechanism_uid, refresh_body, registration_body
from pushgate.store.sealing import Sealer
from tests.api.helpers import MALFORMED, REFUSED, Api, Phone, endpoint
from tests.support import TEST_SECRET_KEY


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


async def _alice(api: Api, realm: str = "/") -> tuple[str, Phone]:
    await api.user(realm, "alice")
    return await api.key(realm), await api.register(realm, "alice")


# register ------------------------------------------------------------------------------------


async def test_register_answers_exactly_200_empty_object_and_stores_the_device(api: Api) -> None:
    await api.user("/", "alice")
    uri = await api.start("/", "alice")
    device = new_device("Pixel 8")
    uid = new_mechanism_uid()
    body = {
        "messageId": uri.message_id,
        "jwt": jwt.sign(
            {
                "response": challenge_response(uri.secret, uri.challenge),
                "mechanismUid": uid,
                "deviceId": device.device_id,
                "deviceName": "Pixel 8",
                "deviceType": "android",
                "communicationType": "gcm",
            },
            uri.secret,
        ),
    }

    response = await api.post(uri.register_url, body)

    assert response.status_code == 200
    assert response.content == b"{}"
    assert response.headers["content-type"] == "application/json"
    row = await api.device_row(uid)
    assert row["push_token"] == device.device_id
    assert row["name"] == "Pixel 8"
    assert (row["device_type"], row["communication_type"]) == ("android", "gcm")
    assert row["status"] == "active"
    assert row["realm"] == "/"
    # Stored sealed (AES-GCM under the server key, bound to the row), never as it is.
    stored = bytes(row["secret"])
    assert uri.secret not in stored
    assert Sealer(base64.b64decode(TEST_SECRET_KEY)).open(stored, f"devices/{row['id']}") == (
        uri.secret
    )
    assert await api.audit_events(row["id"]) == ["device.registered"]


async def test_register_without_device_name_gets_ams_default_name(api: Api) -> None:
    await api.user("/", "alice")
    uri = await api.start("/", "alice")
    claims = {
        "response": challenge_response(uri.secret, uri.challenge),
        "mechanismUid": "759ACE9D-C64B-4F6E-A1B8-0E8F2C1D3A4B",  # iOS: upper case
        "deviceId": "A1B2C3D4" * 8,
        "deviceType": "ios",
        "communicationType": "apns",
    }
    body = {"messageId": uri.message_id, "jwt": jwt.sign(claims, uri.secret)}

    response = await api.post(uri.register_url, body)

    assert (response.status_code, response.content) == (200, b"{}")
    row = await api.device_row("759ACE9D-C64B-4F6E-A1B8-0E8F2C1D3A4B")
    assert row["name"] == "Push Device"
    assert (row["device_type"], row["communication_type"]) == ("ios", "apns")


async def test_extra_body_fields_and_client_headers_are_ignored(api: Api) -> None:
    # PIOS adds "userId"; Android sends the LB cookie as Cookie, legacy iOS as Set-Cookie.
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice")
    push = await api.push(phone)
    body = {**api.answer_body(phone, push), "userId": "alice"}

    response = await api.post(
        phone.authenticate_url,
        body,
        **{
            "Cookie": "amlbcookie=01",
            "Set-Cookie": "amlbcookie=01",
            "accept-api-version": "resource=1.0, protocol=1.0",
            "Content-Type": "application/json; charset=utf-8",
        },
    )

    assert (response.status_code, response.content) == (200, b"{}")
    assert await api.status(key, session["id"]) == "accepted"


# the URL forms -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["short", "long"])
@pytest.mark.parametrize("realm_name", ["/", "alpha"])
async def test_full_loop_through_each_url_form(api: Api, realm_name: str, form: str) -> None:
    realm = realm_name if realm_name == "/" else await api.realm(realm_name)
    await api.user(realm, "alice")
    key = await api.key(realm)
    phone = await api.register(realm, "alice", url=endpoint(realm, "register", form=form))
    session = await api.create_session(key, "alice")

    (push,) = await api.pending(phone, url=endpoint(realm, "pending", form=form))
    response = await api.answer(phone, push, url=endpoint(realm, "authenticate", form=form))
    assert (response.status_code, response.content) == (200, b"{}")
    assert await api.status(key, session["id"]) == "accepted"

    new = new_device("renamed")
    response = await api.post(
        endpoint(realm, "refresh", form=form), refresh_body(phone.mechanism, new)
    )
    assert (response.status_code, response.content) == (200, b"{}")
    assert (await api.device_row(phone.mechanism.mechanism_uid))["push_token"] == new.device_id


async def test_qr_code_carries_the_short_url_of_its_realm(api: Api) -> None:
    alpha = await api.realm("alpha")
    await api.user(alpha, "alice")
    uri = await api.start(alpha, "alice")
    assert uri.register_url == "http://testserver/json/alpha/push/sns/message?_action=register"
    assert uri.authenticate_url == (
        "http://testserver/json/alpha/push/sns/message?_action=authenticate"
    )
    assert len(uri.secret) == 32


async def test_message_id_prefix_decides_the_handler_not_the_action(api: Api) -> None:
    await api.user("/", "alice")
    key = await api.key()
    # A REGISTER message posted to `_action=authenticate` registers (AM does the same).
    phone = await api.register("/", "alice", url=endpoint("/", "authenticate"))
    session = await api.create_session(key, "alice")
    push = await api.push(phone)

    # And an AUTHENTICATE message posted to `_action=register` answers.
    response = await api.answer(phone, push, url=endpoint("/", "register"))

    assert (response.status_code, response.content) == (200, b"{}")
    assert await api.status(key, session["id"]) == "accepted"


# authenticate --------------------------------------------------------------------------------


async def test_deny_rejects_the_session_and_keeps_the_detail(api: Api) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice")
    push = await api.push(phone)

    response = await api.answer(phone, push, approve=False, detail="not me")

    assert (response.status_code, response.content) == (200, b"{}")
    data = (await api.get_session(key, session["id"])).json()
    assert (data["status"], data["detail"]) == ("rejected", "not me")
    assert await api.terminal_events(session["id"]) == ["session.answered"]


async def test_deny_claim_denies_whatever_its_value(api: Api) -> None:
    # AM: the mere presence of `deny`, even false, denies (spec §4.3).
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice")
    push = await api.push(phone)
    claims = {
        "response": challenge_response(phone.mechanism.secret, b64std_decode(push.claims["c"])),
        "deny": False,
    }
    body = {"messageId": push.message_id, "jwt": jwt.sign(claims, phone.mechanism.secret)}

    response = await api.post(phone.authenticate_url, body)

    assert response.status_code == 200
    assert await api.status(key, session["id"]) == "rejected"


# pending -------------------------------------------------------------------------------------


async def test_pending_lists_open_pushes_oldest_first_with_am_claims(api: Api) -> None:
    key, phone = await _alice(api)
    await api.allow_many_sessions()
    first = await api.create_session(key, "alice", notification={"title": "Sign in", "body": "b"})
    api.advance(1)
    second = await api.create_session(key, "alice", secondsToExpire=120)

    response = await api.poll(phone)

    assert response.status_code == 200
    assert list(response.json()) == ["notifications"]
    assert [sorted(item) for item in response.json()["notifications"]] == [
        ["message", "messageId"],
        ["message", "messageId"],
    ]
    older, newer = await api.pending(phone)
    assert older.message_id.startswith("AUTHENTICATE:")
    assert older.claims["u"] == phone.mechanism.mechanism_uid
    assert older.claims["d"] == "alice"
    assert older.claims["m"] == "b"
    assert older.claims["k"] == "default"
    assert older.claims["t"] == "86400"
    assert json.loads(older.claims["p"]) == {"title": "Sign in", "body": "b"}
    assert len(b64std_decode(older.claims["c"])) == 32
    assert newer.claims["t"] == "120"
    assert newer.claims["m"] == "Sign-in request"
    assert older.claims["c"] != newer.claims["c"]

    assert (await api.answer(phone, older)).status_code == 200
    assert [p.message_id for p in await api.pending(phone)] == [newer.message_id]
    assert await api.status(key, first["id"]) == "accepted"
    assert await api.status(key, second["id"]) == "sent"


async def test_pending_is_empty_without_sessions(api: Api) -> None:
    _key, phone = await _alice(api)
    response = await api.poll(phone)
    assert (response.status_code, response.json()) == (200, {"notifications": []})


async def test_pending_accepts_iat_within_60_seconds_either_way(api: Api) -> None:
    key, phone = await _alice(api)
    await api.create_session(key, "alice")
    uid = phone.mechanism.mechanism_uid

    def body(skew: int) -> dict[str, str]:
        claims = poll_claims(uid, api.now_ms() + skew * 1000)
        return {"mechanismUid": uid, "jwt": jwt.sign(claims, phone.mechanism.secret)}

    for skew in (-60, -1, 0, 1, 60):
        response = await api.post(phone.pending_url, body(skew))
        assert response.status_code == 200, skew
        assert len(response.json()["notifications"]) == 1
    for skew in (-61, 61, -86_400, 86_400):
        response = await api.post(phone.pending_url, body(skew))
        assert (response.status_code, response.json()) == (400, REFUSED), skew


def _changed(claims: dict[str, object], changes: dict[str, object]) -> dict[str, object]:
    """`claims` with `changes` applied; a None value removes the claim."""
    merged = {**claims, **changes}
    return {k: v for k, v in merged.items() if v is not None}


async def test_pending_refuses_bad_poll_claims(api: Api) -> None:
    key, phone = await _alice(api)
    await api.create_session(key, "alice")
    uid = phone.mechanism.mechanism_uid
    cases: dict[str, dict[str, object]] = {
        "iat-missing": {"iat": None},
        "iat-string": {"iat": str(api.now_ms() // 1000)},
        "iat-float": {"iat": api.now_ms() / 1000},
        "iat-bool": {"iat": True},
        "iat-ms": {"iat": api.now_ms()},
        "uid-missing": {"mechanismUid": None},
        "uid-other": {"mechanismUid": "someone-else"},
        "foreign-response": {"response": "x"},
        "foreign-deviceId": {"deviceId": "x"},
    }
    claims: dict[str, object] = dict(poll_claims(uid, api.now_ms()))

    for name, changes in cases.items():
        token = jwt.sign(_changed(claims, changes), phone.mechanism.secret)
        response = await api.post(phone.pending_url, {"mechanismUid": uid, "jwt": token})
        assert (response.status_code, response.json()) == (400, REFUSED), name
    token = jwt.sign(claims, phone.mechanism.secret)
    response = await api.post(phone.pending_url, {"mechanismUid": uid, "jwt": token})
    assert len(response.json()["notifications"]) == 1


async def test_pending_refuses_an_unknown_mechanism_and_a_foreign_secret(api: Api) -> None:
    key, phone = await _alice(api)
    await api.user("/", "bob")
    bob = await api.register("/", "bob")
    await api.create_session(key, "alice")
    uid = phone.mechanism.mechanism_uid
    claims = poll_claims(uid, api.now_ms())
    signed_by_bob = {"mechanismUid": uid, "jwt": jwt.sign(claims, bob.mechanism.secret)}
    unknown = {
        "mechanismUid": "no-such-uid",
        "jwt": jwt.sign(poll_claims("no-such-uid", api.now_ms()), phone.mechanism.secret),
    }

    for body in (signed_by_bob, unknown):
        response = await api.post(phone.pending_url, body)
        assert (response.status_code, response.json()) == (400, REFUSED)


# refresh -------------------------------------------------------------------------------------


async def test_refresh_replaces_the_push_token_and_name(api: Api) -> None:
    key, phone = await _alice(api)
    new = new_device("new phone")

    response = await api.post(phone.refresh_url, refresh_body(phone.mechanism, new))

    assert (response.status_code, response.content) == (200, b"{}")
    row = await api.device_row(phone.mechanism.mechanism_uid)
    assert (row["push_token"], row["name"]) == (new.device_id, "new phone")
    assert await api.audit_events(row["id"]) == ["device.registered", "device.refreshed"]
    # The phone keeps working with its old secret.
    session = await api.create_session(key, "alice")
    assert (await api.answer(phone, await api.push(phone))).status_code == 200
    assert await api.status(key, session["id"]) == "accepted"


async def test_refresh_with_ios_mechanism_uid_claim(api: Api) -> None:
    _key, phone = await _alice(api)
    claims = {
        "mechanismUid": phone.mechanism.mechanism_uid,
        "deviceId": "ABCDEF" * 10,
        "deviceType": "ios",
        "communicationType": "apns",
    }
    body = {
        "mechanismUid": phone.mechanism.mechanism_uid,
        "username": "alice",
        "jwt": jwt.sign(claims, phone.mechanism.secret),
    }

    response = await api.post(phone.refresh_url, body)

    assert (response.status_code, response.content) == (200, b"{}")
    row = await api.device_row(phone.mechanism.mechanism_uid)
    # No deviceName in the JWT: the stored name stays.
    assert (row["push_token"], row["device_type"], row["name"]) == (
        "ABCDEF" * 10,
        "ios",
        phone.device.device_name,
    )


async def test_refresh_refusals_change_nothing(api: Api) -> None:
    _key, phone = await _alice(api)
    await api.user("/", "bob")
    bob = await api.register("/", "bob")
    claims: dict[str, object] = {
        "deviceId": "new-token",
        "deviceName": "n",
        "deviceType": "android",
        "communicationType": "gcm",
    }

    def signed(secret: bytes = phone.mechanism.secret, **changes: object) -> str:
        return jwt.sign(_changed(claims, changes), secret)

    good: dict[str, object] = {
        "mechanismUid": phone.mechanism.mechanism_uid,
        "username": "alice",
        "jwt": signed(),
    }
    cases: list[tuple[str, dict[str, object], dict[str, object]]] = [
        ("no-username", _changed(good, {"username": None}), MALFORMED),
        ("no-mechanismUid", _changed(good, {"mechanismUid": None}), MALFORMED),
        ("no-jwt", _changed(good, {"jwt": None}), MALFORMED),
        ("empty-username", {**good, "username": ""}, MALFORMED),
        ("int-username", {**good, "username": 7}, MALFORMED),
        ("other-user", {**good, "username": "bob"}, REFUSED),
        ("unknown-uid", {**good, "mechanismUid": "no-such-uid"}, REFUSED),
        ("bobs-uid", {**good, "mechanismUid": bob.mechanism.mechanism_uid}, REFUSED),
        ("claim-uid-differs", {**good, "jwt": signed(mechanismUid="other")}, REFUSED),
        ("no-deviceId-claim", {**good, "jwt": signed(deviceId=None)}, REFUSED),
        ("int-deviceId-claim", {**good, "jwt": signed(deviceId=5)}, REFUSED),
        ("empty-deviceId-claim", {**good, "jwt": signed(deviceId="")}, REFUSED),
        ("no-deviceType-claim", {**good, "jwt": signed(deviceType=None)}, REFUSED),
        ("int-deviceName-claim", {**good, "jwt": signed(deviceName=1)}, REFUSED),
        ("bobs-secret", {**good, "jwt": signed(bob.mechanism.secret)}, REFUSED),
        ("zero-secret", {**good, "jwt": signed(b"\x00" * 32)}, REFUSED),
    ]
    before = await api.snapshot()

    for name, body, expected in cases:
        response = await api.post(phone.refresh_url, body)
        assert (response.status_code, response.json()) == (400, expected), name

    assert await api.snapshot() == before
    assert (await api.post(phone.refresh_url, good)).status_code == 200


# bad bodies (A2) -----------------------------------------------------------------------------


def _bad_bodies(message_id: str, token: str) -> list[tuple[str, bytes, dict[str, object]]]:
    def body(value: object) -> bytes:
        return json.dumps(value).encode()

    kind, rest = message_id.split(":", 1)

    return [
        ("empty-object", body({}), MALFORMED),
        ("no-messageId", body({"jwt": token}), MALFORMED),
        ("no-jwt", body({"messageId": message_id}), MALFORMED),
        ("empty-messageId", body({"messageId": "", "jwt": token}), MALFORMED),
        ("empty-jwt", body({"messageId": message_id, "jwt": ""}), MALFORMED),
        ("null-messageId", body({"messageId": None, "jwt": token}), MALFORMED),
        ("null-jwt", body({"messageId": message_id, "jwt": None}), MALFORMED),
        ("int-messageId", body({"messageId": 12, "jwt": token}), MALFORMED),
        ("list-jwt", body({"messageId": message_id, "jwt": [token]}), MALFORMED),
        ("object-jwt", body({"messageId": message_id, "jwt": {"jwt": token}}), MALFORMED),
        ("bool-jwt", body({"messageId": message_id, "jwt": True}), MALFORMED),
        ("long-messageId", body({"messageId": message_id + "0" * 200, "jwt": token}), MALFORMED),
        ("huge-jwt", body({"messageId": message_id, "jwt": token + "A" * 9000}), MALFORMED),
        ("other-prefix", body({"messageId": f"LOGIN:{rest}", "jwt": token}), REFUSED),
        ("lower-prefix", body({"messageId": f"{kind.lower()}:{rest}", "jwt": token}), REFUSED),
        ("upper-uuid", body({"messageId": f"{kind}:{rest.upper()}", "jwt": token}), REFUSED),
        ("spaces", body({"messageId": f" {message_id}", "jwt": token}), REFUSED),
        ("jwt-two-parts", body({"messageId": message_id, "jwt": token.rsplit(".", 1)[0]}), REFUSED),
        ("array", body([message_id, token]), MALFORMED),
        ("string", body(token), MALFORMED),
        ("null", b"null", MALFORMED),
        ("number", b"400", MALFORMED),
        ("empty", b"", MALFORMED),
        ("truncated", body({"messageId": message_id, "jwt": token})[:-1], MALFORMED),
        (
            "duplicate-jwt",
            f'{{"messageId":"{message_id}","jwt":"{token}","jwt":"{token}"}}'.encode(),
            MALFORMED,
        ),
        ("nan", f'{{"messageId":"{message_id}","jwt":"{token}","x":NaN}}'.encode(), MALFORMED),
        (
            "invalid-utf8",
            f'{{"messageId":"{message_id}","jwt":"{token}","x":"'.encode() + b'\xff"}',
            MALFORMED,
        ),
        ("deep-nesting", b'{"x":' + b"[" * 10_000 + b"]" * 10_000 + b"}", MALFORMED),
    ]


async def test_bad_authenticate_bodies_are_refused_and_change_nothing(api: Api) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice")
    push = await api.push(phone)
    good = api.answer_body(phone, push)
    before = await api.snapshot()

    for name, raw, expected in _bad_bodies(good["messageId"], good["jwt"]):
        response = await api.post(phone.authenticate_url, raw)
        assert (response.status_code, response.json()) == (400, expected), name
    assert await api.snapshot() == before
    # The message itself was good all along.
    assert (await api.post(phone.authenticate_url, good)).status_code == 200
    assert await api.status(key, session["id"]) == "accepted"


async def test_bad_register_bodies_are_refused_and_change_nothing(api: Api) -> None:
    await api.user("/", "alice")
    uri = await api.start("/", "alice")
    good = registration_body(uri, new_mechanism_uid(), new_device())
    before = await api.snapshot()

    for name, raw, expected in _bad_bodies(good["messageId"], good["jwt"]):
        response = await api.post(uri.register_url, raw)
        assert (response.status_code, response.json()) == (400, expected), name
    assert await api.snapshot() == before
    assert (await api.post(uri.register_url, good)).status_code == 200
    assert await api.count("devices") == 1


async def test_bad_pending_bodies_are_refused(api: Api) -> None:
    _key, phone = await _alice(api)
    bodies: list[object] = [
        {},
        {"jwt": "x"},
        {"mechanismUid": phone.mechanism.mechanism_uid},
        {"mechanismUid": 1, "jwt": "x"},
        {"mechanismUid": "x" * 129, "jwt": "x"},
        {"mechanismUid": "", "jwt": "x"},
        [],
        "x",
    ]
    for body in bodies:
        response = await api.post(phone.pending_url, body)
        assert (response.status_code, response.json()) == (400, MALFORMED), body


# size limits and odd requests (A3) -----------------------------------------------------------


async def test_body_over_64_kib_is_413(api: Api) -> None:
    key, phone = await _alice(api)
    await api.create_session(key, "alice")
    push = await api.push(phone)
    body = {**api.answer_body(phone, push), "padding": "x" * (64 * 1024)}
    before = await api.snapshot()

    response = await api.post(phone.authenticate_url, body)

    assert response.status_code == 413
    # The phrase is Python's: "Request Entity Too Large" before 3.13, "Content Too Large" after.
    assert response.json() == {
        "code": 413,
        "reason": HTTPStatus(413).phrase,
        "message": "request body exceeds 65536 bytes",
    }
    assert await api.snapshot() == before


async def test_chunked_body_over_64_kib_is_413(api: Api) -> None:
    key, phone = await _alice(api)
    await api.create_session(key, "alice")
    push = await api.push(phone)
    start = json.dumps(api.answer_body(phone, push))[:-1].encode() + b', "padding": "'

    async def chunks() -> AsyncIterator[bytes]:
        yield start
        for _ in range(65):
            yield b"x" * 1024
        yield b'"}'

    before = await api.snapshot()

    response = await api.client.post(
        phone.authenticate_url, content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json() == {
        "code": 413,
        "reason": HTTPStatus(413).phrase,
        "message": "request body exceeds 65536 bytes",
    }
    assert await api.snapshot() == before


async def test_body_of_exactly_64_kib_is_read(api: Api) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice")
    push = await api.push(phone)
    body = api.answer_body(phone, push)
    overhead = len(json.dumps({**body, "padding": ""}).encode())
    padded = {**body, "padding": "x" * (64 * 1024 - overhead)}
    assert len(json.dumps(padded).encode()) == 64 * 1024

    response = await api.post(phone.authenticate_url, padded)

    assert (response.status_code, response.content) == (200, b"{}")
    assert await api.status(key, session["id"]) == "accepted"


async def test_unknown_action_is_refused(api: Api) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice")
    push = await api.push(phone)
    body = api.answer_body(phone, push)
    before = await api.snapshot()

    for query in ("?_action=delete", "?_action=", "?_action=REGISTER", "", "?action=register"):
        response = await api.post("/json/push/sns/message" + query, body)
        assert response.status_code == 400, query
        assert response.json() == {
            "code": 400,
            "reason": "Bad Request",
            "message": "Unknown action",
        }
    assert await api.snapshot() == before
    assert await api.status(key, session["id"]) == "sent"


# realms --------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["short", "long"])
async def test_a_device_of_alpha_cannot_use_the_root_realm_url(api: Api, form: str) -> None:
    alpha = await api.realm("alpha")
    await api.user(alpha, "alice")
    await api.user("/", "alice")  # same name in the root realm, to tempt a lookup by name
    key = await api.key(alpha)
    phone = await api.register(alpha, "alice")
    session = await api.create_session(key, "alice")
    push = await api.push(phone)
    before = await api.snapshot()

    answer = await api.answer(phone, push, url=endpoint("/", "authenticate", form=form))
    poll = await api.poll(phone, url=endpoint("/", "pending", form=form))
    refresh = await api.post(
        endpoint("/", "refresh", form=form), refresh_body(phone.mechanism, new_device())
    )

    for response in (answer, poll, refresh):
        assert (response.status_code, response.json()) == (400, REFUSED)
    assert await api.snapshot() == before
    assert (await api.answer(phone, push)).status_code == 200
    assert await api.status(key, session["id"]) == "accepted"


async def test_a_registration_of_alpha_cannot_complete_through_another_realm(api: Api) -> None:
    alpha = await api.realm("alpha")
    beta = await api.realm("beta")
    await api.user(alpha, "alice")
    uri = await api.start(alpha, "alice")
    body = registration_body(uri, new_mechanism_uid(), new_device())
    before = await api.snapshot()

    for url in (endpoint("/", "register"), endpoint(beta, "register", form="long")):
        response = await api.post(url, body)
        assert (response.status_code, response.json()) == (400, REFUSED)
    assert await api.snapshot() == before
    assert (await api.post(uri.register_url, body)).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/json/nosuchrealm/push/sns/message",
        "/json/a%20b/push/sns/message",
        "/json/-x/push/sns/message",
    ],
)
async def test_unknown_or_invalid_realm_in_url_is_refused(api: Api, path: str) -> None:
    key, phone = await _alice(api)
    await api.create_session(key, "alice")
    push = await api.push(phone)

    response = await api.post(path + "?_action=authenticate", api.answer_body(phone, push))

    assert (response.status_code, response.json()) == (400, REFUSED)
