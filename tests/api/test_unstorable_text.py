"""Text no database can store is refused with the face's documented 400 before it reaches one
(issue #6): U+0000 (PostgreSQL text cannot hold it), lone UTF-16 surrogates (a JSON `\\ud800`
escape decodes to one; no encoder writes it) and invalid UTF-8. Before the fix a lone surrogate
in a device string answered 500 and logged two tracebacks.

Every case checks the exact status and body, that no row changed and that nothing was logged
with a traceback, on both databases.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import httpx
import pytest

from pushgate.protocol import jwt
from pushgate.protocol.challenge import challenge_response
from pushgate.protocol.encoding import b64std_decode, b64url, compact_json
from pushgate.services import Services
from pushgate.simulator import new_mechanism_uid
from tests.api.helpers import MALFORMED, REFUSED, SESSIONS, Api, Phone, endpoint

BAD = [
    pytest.param("\x00", id="nul"),
    pytest.param("\ud800", id="high-surrogate"),
    pytest.param("\udfff", id="low-surrogate"),
]
INVALID_REQUEST = "invalidRequest"


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


@pytest.fixture
async def phone(api: Api) -> Phone:
    await api.user("/", "alice")
    return await api.register("/", "alice")


def _signed(payload: bytes, secret: bytes) -> str:
    """An HS256 JWT over exactly `payload`, correctly signed: what a buggy or hostile device
    holding its own secret can send (`jwt.sign` writes UTF-8, which cannot carry a lone
    surrogate, so the claims are built here)."""
    signing_input = f"{b64url(compact_json(jwt.HEADER).encode())}.{b64url(payload)}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def _claims(claims: dict[str, object]) -> bytes:
    # ensure_ascii: every non-ASCII character, a lone surrogate too, travels as a \u escape.
    return json.dumps(claims, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert [r for r in caplog.records if r.exc_info] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def _refused(
    api: Api, url: str, body: object, expected: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    before = await api.snapshot()
    reply = await api.post(url, body)
    assert (reply.status_code, reply.json()) == (400, expected), body
    assert await api.snapshot() == before
    _no_traceback(caplog)


# the device face: strings of the body -----------------------------------------------------------


@pytest.mark.parametrize("bad", BAD)
async def test_unauthenticated_pending_mechanism_uid(
    api: Api, phone: Phone, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"mechanismUid": phone.mechanism.mechanism_uid + bad, "jwt": "x.y.z"}
    await _refused(api, phone.pending_url, body, MALFORMED, caplog)


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("field", ["mechanismUid", "username"])
async def test_unauthenticated_refresh_fields(
    api: Api, phone: Phone, bad: str, field: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"mechanismUid": phone.mechanism.mechanism_uid, "username": "alice", "jwt": "x.y.z"}
    body[field] += bad
    await _refused(api, phone.refresh_url, body, MALFORMED, caplog)


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("action", ["register", "authenticate"])
async def test_message_id(
    api: Api, phone: Phone, bad: str, action: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"messageId": f"{action.upper()}:{bad}", "jwt": "x.y.z"}
    await _refused(api, endpoint("/", action), body, MALFORMED, caplog)


@pytest.mark.parametrize("bad", BAD)
async def test_any_member_name_or_value_of_the_body(
    api: Api, phone: Phone, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    uid = phone.mechanism.mechanism_uid
    for body in (
        {"mechanismUid": uid, "jwt": "x.y.z", "extra": bad},
        {"mechanismUid": uid, "jwt": "x.y.z", "extra": ["ok", {"deep": bad}]},
        {"mechanismUid": uid, "jwt": "x.y.z", f"name{bad}": 1},
        {"mechanismUid": uid, "jwt": f"x.y.z{bad}"},
    ):
        await _refused(api, phone.pending_url, body, MALFORMED, caplog)


async def test_invalid_utf8_in_the_body(
    api: Api, phone: Phone, caplog: pytest.LogCaptureFixture
) -> None:
    uid = phone.mechanism.mechanism_uid.encode()
    for raw in (b"\xff", b"\xed\xa0\x80", b"\xc0\x80"):  # a stray byte, CESU-8, overlong NUL
        body = b'{"mechanismUid": "' + uid + raw + b'", "jwt": "x.y.z"}'
        await _refused(api, phone.pending_url, body, MALFORMED, caplog)


# the device face: strings of the verified JWT claims --------------------------------------------


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("claim", ["mechanismUid", "deviceId", "deviceName", "deviceType"])
async def test_registration_claims(
    api: Api, bad: str, claim: str, caplog: pytest.LogCaptureFixture
) -> None:
    await api.user("/", "alice")
    uri = await api.start("/", "alice")
    claims: dict[str, object] = {
        "response": challenge_response(uri.secret, uri.challenge),
        "mechanismUid": new_mechanism_uid(),
        "deviceId": "token-1",
        "deviceName": "Pixel",
        "deviceType": "android",
        "communicationType": "gcm",
    }
    claims[claim] = f"{claims[claim]}{bad}"
    body = {"messageId": uri.message_id, "jwt": _signed(_claims(claims), uri.secret)}
    await _refused(api, uri.register_url, body, REFUSED, caplog)


@pytest.mark.parametrize("bad", BAD)
async def test_answer_detail(
    api: Api, phone: Phone, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = await api.key()
    session = await api.create_session(key, "alice")
    push = await api.push(phone)
    response = challenge_response(phone.mechanism.secret, b64std_decode(push.claims["c"]))
    token = _signed(_claims({"response": response, "detail": f"ok{bad}"}), phone.mechanism.secret)
    body = {"messageId": push.message_id, "jwt": token}
    await _refused(api, phone.authenticate_url, body, REFUSED, caplog)
    assert await api.status(key, session["id"]) == "sent"


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("claim", ["deviceId", "deviceName", "mechanismUid"])
async def test_refresh_claims(
    api: Api, phone: Phone, bad: str, claim: str, caplog: pytest.LogCaptureFixture
) -> None:
    uid = phone.mechanism.mechanism_uid
    claims: dict[str, object] = {
        "mechanismUid": uid,
        "deviceId": "new-token",
        "deviceName": "new name",
        "deviceType": "android",
        "communicationType": "gcm",
    }
    claims[claim] = f"{claims[claim]}{bad}"
    token = _signed(_claims(claims), phone.mechanism.secret)
    body = {"mechanismUid": uid, "username": "alice", "jwt": token}
    await _refused(api, phone.refresh_url, body, REFUSED, caplog)


@pytest.mark.parametrize("bad", BAD)
async def test_a_claim_name_or_a_nested_claim(
    api: Api, phone: Phone, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    uid = phone.mechanism.mechanism_uid
    base = {"deviceId": "t", "deviceType": "android", "communicationType": "gcm"}
    variants: list[dict[str, object]] = [{**base, f"x{bad}": "1"}, {**base, "x": [{"y": bad}]}]
    for claims in variants:
        token = _signed(_claims(claims), phone.mechanism.secret)
        body = {"mechanismUid": uid, "username": "alice", "jwt": token}
        await _refused(api, phone.refresh_url, body, REFUSED, caplog)


async def test_invalid_utf8_in_the_claims(
    api: Api, phone: Phone, caplog: pytest.LogCaptureFixture
) -> None:
    uid = phone.mechanism.mechanism_uid
    payload = b'{"deviceId":"t\xff","deviceType":"android","communicationType":"gcm"}'
    body = {"mechanismUid": uid, "jwt": _signed(payload, phone.mechanism.secret)}
    await _refused(api, phone.refresh_url, {**body, "username": "alice"}, REFUSED, caplog)


# the relying-party face ----------------------------------------------------------------------


async def _v1_refused(api: Api, key: str, body: object, caplog: pytest.LogCaptureFixture) -> None:
    before = await api.snapshot()
    reply = await api.create_session_response(key, body)
    assert reply.status_code == 400, body
    assert reply.json()["code"] == INVALID_REQUEST
    assert set(reply.json()) == {"code", "message"}
    assert await api.snapshot() == before
    _no_traceback(caplog)


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("where", ["user", "title", "subtitle", "body", "payload", "name"])
async def test_v1_create(
    api: Api, phone: Phone, bad: str, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = await api.key()
    body: dict[str, object]
    if where == "user":
        body = {"user": f"alice{bad}"}
    elif where == "name":
        body = {"user": "alice", f"user{bad}": "x"}
    else:
        body = {"user": "alice", "notification": {where: f"text{bad}"}}
    await _v1_refused(api, key, body, caplog)


async def test_v1_invalid_utf8(api: Api, phone: Phone, caplog: pytest.LogCaptureFixture) -> None:
    key = await api.key()
    for raw in (b"\xff", b"\xed\xa0\x80", b"\xc0\x80"):
        await _v1_refused(api, key, b'{"user": "alice' + raw + b'"}', caplog)


@pytest.mark.parametrize("bad", BAD)
async def test_v1_update(api: Api, bad: str, caplog: pytest.LogCaptureFixture) -> None:
    key = await api.key()
    session = await api.create_session(key, "alice")
    before = await api.snapshot()
    reply = await api.patch_session(key, session["id"], {"status": "canceled", "why": bad})
    assert (reply.status_code, reply.json()["code"]) == (400, INVALID_REQUEST)
    assert await api.snapshot() == before
    reply = await api.client.get(f"{SESSIONS}/{session['id']}", headers={"X-API-Key": key})
    assert reply.json()["status"] != "canceled"
    _no_traceback(caplog)


# the rest of a request: paths and query parameters ----------------------------------------------


@pytest.mark.parametrize("escape", ["%00", "%ED%A0%80", "%FF"])
async def test_a_realm_in_the_device_path(
    api: Api, phone: Phone, escape: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"mechanismUid": phone.mechanism.mechanism_uid, "jwt": "x.y.z"}
    await _refused(api, f"/json/a{escape}/push/sns/message?_action=pending", body, REFUSED, caplog)


@pytest.mark.parametrize("escape", ["%00", "%ED%A0%80", "%FF"])
async def test_v1_path_and_query(api: Api, escape: str, caplog: pytest.LogCaptureFixture) -> None:
    key = await api.key()
    session = await api.create_session(key, "alice")
    headers = {"X-API-Key": key}
    before = await api.snapshot()
    reply = await api.client.get(f"{SESSIONS}/{session['id']}{escape}", headers=headers)
    assert (reply.status_code, reply.json()["code"]) == (404, "badRequest")
    reply = await api.client.get(f"{SESSIONS}/{session['id']}?wait=1{escape}", headers=headers)
    assert (reply.status_code, reply.json()["code"]) == (400, INVALID_REQUEST)
    assert await api.snapshot() == before
    _no_traceback(caplog)
