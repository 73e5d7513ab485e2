"""The simulated authenticator (spec §3-§5): body builders against the published vectors and
the server-side verifiers, the state file, the HTTP client and the `pushgate device` CLI.

The client and CLI talk to `FakeAm`, a minimal AM-style endpoint built from the protocol core
only (not pushgate's server; the live-server tests live elsewhere): through
`httpx.MockTransport` for the client, through a real loopback HTTP server for the CLI.
"""

from __future__ import annotations

import json
import socket
import stat
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from pushgate.cli.device import device_group
from pushgate.clock import Clock, SystemClock
from pushgate.errors import BadDeviceMessage
from pushgate.protocol import jwt, qr
from pushgate.protocol.challenge import new_challenge, new_secret
from pushgate.protocol.device_messages import (
    REFUSED,
    Answer,
    DeviceDetails,
    Registration,
    parse_message_request,
    parse_poll_request,
    parse_refresh_request,
    verify_authentication,
    verify_poll,
    verify_refresh,
    verify_registration,
)
from pushgate.protocol.encoding import b64std, b64std_decode
from pushgate.protocol.message_ids import MessageKind, new_message_id
from pushgate.protocol.push_payload import PushClaims, PushType, push_jwt
from pushgate.simulator import (
    DeviceClient,
    Mechanism,
    Notification,
    SimulatedDevice,
    SimulatorError,
    action_url,
    answer_body,
    decode_notification,
    device_from_json,
    device_to_json,
    load_device,
    mechanism_from_uri,
    new_device,
    new_mechanism_uid,
    poll_body,
    refresh_body,
    registration_body,
    save_device,
)
from pushgate.simulator.device import MAX_NOTIFICATIONS
from tests.support import FakeClock
from tests.vectors.test_forgerock_vectors import (
    ANDROID_SECRET,
    CHALLENGE_PUSH,
    CHALLENGE_PUSH_JWT,
    EXAMPLE_4_URI,
    IOS_SECRET,
    REGISTER_JWT,
    VECTORS,
)

IOS_UID = "759ACE9D-C64B-43E6-981D-97F7B54C3B01"
AM8_UID = "b162b325-ebb1-48e0-8ab7-b38cf341da95"
AUTH_ID = "AUTHENTICATE:0f8e7d6c-5b4a-4321-8fed-cba987654321" + "1790000000000"


def _mechanism(uid: str, secret: bytes, **changes: Any) -> Mechanism:
    base = mechanism_from_uri(EXAMPLE_4_URI, uid)
    return replace(base, secret=secret, **changes)


IOS_MECHANISM = _mechanism(IOS_UID, IOS_SECRET)
AM8_MECHANISM = _mechanism(AM8_UID, ANDROID_SECRET)
PIXEL = SimulatedDevice(device_id="testFcmToken", device_name="Pixel 8")


# --- pure body builders ----------------------------------------------------------------------


def test_registration_body_is_byte_exact() -> None:
    # §9 item 4: QR example 4, mechanism b162…, Pixel 8 with token testFcmToken.
    body = registration_body(EXAMPLE_4_URI, AM8_UID, PIXEL)
    assert body == {"messageId": EXAMPLE_4_URI.message_id, "jwt": REGISTER_JWT}
    assert list(body) == ["messageId", "jwt"]


def test_registration_body_passes_the_server_check() -> None:
    device = new_device("Test phone")
    uid = new_mechanism_uid()
    body = registration_body(EXAMPLE_4_URI, uid, device)
    registration = verify_registration(body["jwt"], EXAMPLE_4_URI.secret, EXAMPLE_4_URI.challenge)
    assert registration == Registration(
        uid, DeviceDetails(device.device_id, "android", "gcm", "Test phone")
    )


def test_registration_refuses_a_short_secret() -> None:
    # B10 from the device's side: Android's MACSigner wants >= 256 bits.
    short = replace(EXAMPLE_4_URI, secret=EXAMPLE_4_URI.secret[:31])
    with pytest.raises(SimulatorError, match="32"):
        registration_body(short, AM8_UID, PIXEL)
    with pytest.raises(SimulatorError, match="32"):
        mechanism_from_uri(short, AM8_UID)


@pytest.mark.parametrize("case", VECTORS["device_jwts"], ids=lambda c: c["what"])
def test_answer_body_matches_the_vectors(case: dict[str, Any]) -> None:
    push = VECTORS["server_push_jwts"][0]["jwt"]
    body = answer_body(IOS_MECHANISM, AUTH_ID, push, approve=case["what"] == "accept")
    assert body == {"messageId": AUTH_ID, "jwt": case["jwt"]}


def test_answer_to_a_number_challenge() -> None:
    body = answer_body(AM8_MECHANISM, AUTH_ID, CHALLENGE_PUSH_JWT, True, 43, "on my phone")
    claims = jwt.verify(body["jwt"], ANDROID_SECRET)
    assert claims == {
        "response": "Eg6eGR3hEb5qMAc7CThAcJx6LkUNHh8Ukxj69wRYrlc=",  # §9 item 5
        "challengeResponse": "43",
        "detail": "on my phone",
    }
    answer = verify_authentication(body["jwt"], ANDROID_SECRET, CHALLENGE_PUSH.challenge)
    assert answer == Answer(approved=True, number=43, detail="on my phone")


def test_deny_with_a_number_still_denies() -> None:
    body = answer_body(AM8_MECHANISM, AUTH_ID, CHALLENGE_PUSH_JWT, False, 34)
    answer = verify_authentication(body["jwt"], ANDROID_SECRET, CHALLENGE_PUSH.challenge)
    assert answer == Answer(approved=False, number=34, detail=None)


def _forged_push(claims: dict[str, object]) -> str:
    """A push validly signed for AM8_MECHANISM but with claims AM would never send."""
    return jwt.sign(claims, ANDROID_SECRET)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (push_jwt(CHALLENGE_PUSH, IOS_SECRET), "does not verify"),
        (push_jwt(replace(CHALLENGE_PUSH, mechanism_uid=IOS_UID), ANDROID_SECRET), "another"),
        (_forged_push({**CHALLENGE_PUSH.as_dict(), "t": 120}), "not a string"),
        (_forged_push({**CHALLENGE_PUSH.as_dict(), "c": "not base64!"}), "Base64"),
        (_forged_push({"u": AM8_UID}), "no challenge"),
        (_forged_push({**CHALLENGE_PUSH.as_dict(), "c": ""}), "no challenge"),
        ("garbage", "does not verify"),
    ],
    ids=[
        "other-secret",
        "other-mechanism",
        "int-claim",
        "bad-challenge",
        "no-challenge",
        "empty-challenge",
        "junk",
    ],
)
def test_the_device_refuses_pushes_the_app_would_drop(token: str, reason: str) -> None:
    with pytest.raises(SimulatorError, match=reason):
        answer_body(AM8_MECHANISM, AUTH_ID, token, True)
    with pytest.raises(SimulatorError, match=reason):
        decode_notification(AM8_MECHANISM, AUTH_ID, token, 0)


def test_refresh_body() -> None:
    device = replace(PIXEL, device_id="newFcmToken")
    body = refresh_body(AM8_MECHANISM, device)
    assert list(body) == ["mechanismUid", "username", "jwt"]
    assert (body["mechanismUid"], body["username"]) == (AM8_UID, "bjensen")
    # Android leaves mechanismUid out of the JWT (spec §4.4).
    assert "mechanismUid" not in jwt.verify(body["jwt"], ANDROID_SECRET)
    details = verify_refresh(body["jwt"], ANDROID_SECRET, AM8_UID)
    assert details == DeviceDetails("newFcmToken", "android", "gcm", "Pixel 8")
    assert parse_refresh_request(body).username == "bjensen"


def test_refresh_body_without_a_known_username() -> None:
    body = refresh_body(replace(AM8_MECHANISM, user_id=None), PIXEL)
    assert "username" not in body
    with pytest.raises(BadDeviceMessage):
        parse_refresh_request(body)  # AM needs it: the device must learn it from `d` first


def test_poll_body() -> None:
    now_ms = 1_790_000_000_999
    body = poll_body(AM8_MECHANISM, now_ms)
    assert body["mechanismUid"] == AM8_UID
    assert jwt.verify(body["jwt"], ANDROID_SECRET) == {
        "mechanismUid": AM8_UID,
        "iat": 1_790_000_000,
    }
    request = parse_poll_request(body)
    verify_poll(request.jwt, ANDROID_SECRET, AM8_UID, now_ms + 60_000, 60)
    with pytest.raises(BadDeviceMessage):
        verify_poll(request.jwt, ANDROID_SECRET, AM8_UID, now_ms + 61_000, 60)


@pytest.mark.parametrize(
    ("url", "action", "expected"),
    [
        (
            "https://am.example.com/am/json/alpha/push/sns/message?_action=register",
            "pending",
            "https://am.example.com/am/json/alpha/push/sns/message?_action=pending",
        ),
        (
            "http://127.0.0.1:8080/json/push/sns/message?_action=register",
            "refresh",
            "http://127.0.0.1:8080/json/push/sns/message?_action=refresh",
        ),
        (
            "https://am.example.com/am/json/push/sns/message?x=1&_action=register&y=2",
            "pending",
            "https://am.example.com/am/json/push/sns/message?x=1&y=2&_action=pending",
        ),
    ],
)
def test_action_url(url: str, action: str, expected: str) -> None:
    assert action_url(url, action) == expected


def test_mechanism_urls() -> None:
    assert AM8_MECHANISM.refresh_url == (
        "https://am.example.com/am/json/push/sns/message?_action=refresh"
    )
    assert AM8_MECHANISM.pending_url == (
        "https://am.example.com/am/json/push/sns/message?_action=pending"
    )
    assert "secret" not in repr(AM8_MECHANISM)  # never in a log line


# --- notifications and the device model -------------------------------------------------------


def test_decoded_challenge_push() -> None:
    notification = decode_notification(AM8_MECHANISM, AUTH_ID, CHALLENGE_PUSH_JWT, 5)
    assert notification.push_type is PushType.CHALLENGE
    assert notification.numbers == (34, 43, 57)
    assert notification.message == "Login attempt from bjensen at ForgeRock"
    assert notification.username == "bjensen"
    assert notification.created_ms == 1629261902660
    assert notification.expires_ms == 1629261902660 + 120_000
    assert not notification.expired(notification.expires_ms)
    assert notification.expired(notification.expires_ms + 1)


def test_old_am_push_uses_defaults() -> None:
    # AM 13 sends only u, l, c, t (spec §5.1): no `i`, `k`, `m`.
    push = VECTORS["server_push_jwts"][0]["jwt"]
    notification = decode_notification(IOS_MECHANISM, AUTH_ID, push, 1_000)
    assert notification.push_type is PushType.DEFAULT
    assert notification.numbers == ()
    assert notification.created_ms == 1_000
    assert notification.expires_ms == 121_000


def test_unknown_push_type_and_numbers_outside_challenges() -> None:
    weird = _forged_push({**CHALLENGE_PUSH.as_dict(), "k": "fancy"})
    notification = decode_notification(AM8_MECHANISM, AUTH_ID, weird, 0)
    assert notification.push_type is PushType.DEFAULT
    assert notification.numbers == ()  # `n` only counts for challenge pushes
    broken = _forged_push({**CHALLENGE_PUSH.as_dict(), "n": "34, 43,x"})
    assert decode_notification(AM8_MECHANISM, AUTH_ID, broken, 0).numbers == ()


def _note(message_id: str, created_ms: int, **changes: Any) -> Notification:
    claims = {"u": AM8_UID, "c": b64std(b"c" * 32), "i": str(created_ms), "t": "120"}
    return replace(Notification(message_id, AM8_UID, "jwt", claims, created_ms), **changes)


def test_known_message_id_keeps_the_stored_copy() -> None:
    device = replace(PIXEL, mechanisms=(AM8_MECHANISM,))
    device = device.with_notifications([_note("A", 1)]).with_answered("A")
    device = device.with_notifications([_note("A", 1), _note("B", 2)])
    assert [(n.message_id, n.answered) for n in device.notifications] == [("A", True), ("B", False)]


def test_notifications_are_bounded() -> None:
    device = PIXEL.with_notifications(_note(str(i), i) for i in range(MAX_NOTIFICATIONS + 10))
    assert len(device.notifications) == MAX_NOTIFICATIONS
    assert device.notifications[0].message_id == "10"


def test_newest_unanswered_skips_answered_and_expired() -> None:
    now = 1_000_000
    device = PIXEL.with_notifications(
        [
            _note("old", now - 10_000),
            _note("newest-answered", now, answered=True),
            _note("expired", now - 121_000),
            _note("newer", now - 5_000),
        ]
    )
    chosen = device.newest_unanswered(now)
    assert chosen is not None and chosen.message_id == "newer"
    assert device.with_answered("newer").with_answered("old").newest_unanswered(now) is None


def test_username_is_learnt_from_pushes() -> None:
    device = replace(PIXEL, mechanisms=(replace(AM8_MECHANISM, user_id=None),))
    device = device.with_notifications([_note("A", 1, claims={"u": AM8_UID, "d": "bjensen"})])
    assert device.mechanism(AM8_UID).user_id == "bjensen"


def test_new_registration_for_the_same_account_replaces_the_old_one() -> None:
    device = PIXEL.with_mechanism(AM8_MECHANISM).with_mechanism(IOS_MECHANISM)
    assert [m.mechanism_uid for m in device.mechanisms] == [IOS_UID]
    other = replace(AM8_MECHANISM, account="scarter")
    assert len(device.with_mechanism(other).mechanisms) == 2
    with pytest.raises(SimulatorError):
        device.mechanism(AM8_UID)


def test_new_device_and_mechanism_ids() -> None:
    first, second = new_device(), new_device()
    assert first.device_id.startswith("sim-") and len(first.device_id) == 36
    assert first.device_id != second.device_id
    assert (first.device_type, first.communication_type) == ("android", "gcm")
    uid = new_mechanism_uid()
    assert uid == uid.lower() and uuid.UUID(uid).version == 4


# --- the state file ---------------------------------------------------------------------------


def _rich_device() -> SimulatedDevice:
    device = PIXEL.with_mechanism(AM8_MECHANISM).with_mechanism(
        replace(IOS_MECHANISM, account="scarter", user_id=None, device_profile_id=None)
    )
    notification = decode_notification(AM8_MECHANISM, AUTH_ID, CHALLENGE_PUSH_JWT, 42)
    return device.with_notifications([notification]).with_answered(AUTH_ID)


def test_state_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "device.json"
    device = _rich_device()
    save_device(device, path)
    assert load_device(path) == device
    assert device_from_json(json.loads(path.read_text())) == device


def test_state_file_is_private_and_stores_secrets_as_base64(tmp_path: Path) -> None:
    path = tmp_path / "device.json"
    save_device(_rich_device(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["mechanisms"][0]["secret"] == b64std(ANDROID_SECRET)
    assert b64std_decode(data["mechanisms"][1]["secret"]) == IOS_SECRET


def test_state_is_replaced_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "device.json"
    save_device(PIXEL, path)
    before = path.stat().st_ino
    save_device(_rich_device(), path)
    assert path.stat().st_ino != before  # a new file renamed over the old one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["device.json"]  # no temp left


def test_missing_state_is_none(tmp_path: Path) -> None:
    assert load_device(tmp_path / "absent.json") is None


def test_unwritable_state_is_a_simulator_error(tmp_path: Path) -> None:
    with pytest.raises(SimulatorError, match="cannot write"):
        save_device(PIXEL, tmp_path / "no-such-dir" / "device.json")


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.update(version=2), "version"),
        (lambda d: d.pop("device_id"), "device_id"),
        (lambda d: d["mechanisms"][0].update(secret="not base64"), r"mechanisms\[0\].secret"),
        (lambda d: d["mechanisms"][0].update(user_id=5), r"mechanisms\[0\].user_id"),
        (lambda d: d["notifications"][0]["claims"].update(t=120), r"notifications\[0\].claims"),
        (lambda d: d["notifications"][0].update(answered="yes"), "answered"),
        (lambda d: d["notifications"][0].update(received_ms=True), "received_ms"),
        (lambda d: d.update(mechanisms={}), "mechanisms"),
        (lambda d: d["notifications"].append([]), r"notifications\[1\]"),
    ],
)
def test_corrupt_state_is_refused_with_the_field(mutate: Any, where: str) -> None:
    data = device_to_json(_rich_device())
    mutate(data)
    with pytest.raises(SimulatorError, match=where):
        device_from_json(data)


def test_non_json_state_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "device.json"
    path.write_text("{not json")
    with pytest.raises(SimulatorError, match="not JSON"):
        load_device(path)


# --- a minimal AM-style endpoint built from the protocol core --------------------------------


class FakeAm:
    """One user, one QR code, and the four push-endpoint actions, like AM (spec §4)."""

    def __init__(self, base: str, clock: Clock) -> None:
        self.clock = clock
        self.secret = new_secret()
        self.path = "/am/json/alpha/push/sns/message"
        endpoint = qr.push_endpoint(base, "/alpha")
        self.uri = qr.RegistrationUri(
            issuer="ForgeRock",
            account="bjensen",
            secret=self.secret,
            challenge=new_challenge(),
            message_id=new_message_id(MessageKind.REGISTER, clock.now_ms()),
            register_url=f"{endpoint}?_action=register",
            authenticate_url=f"{endpoint}?_action=authenticate",
            lb_cookie="amlbcookie=01",
            user_id="bjensen",
        )
        self.registration: Registration | None = None
        self.pushes: dict[str, tuple[bytes, str]] = {}
        self.junk: list[object] = []
        self.answers: dict[str, Answer] = {}
        self.refreshes: list[DeviceDetails] = []
        self.requests: list[httpx.Request] = []
        self.set_cookie: str | None = None
        self._lock = threading.Lock()

    @property
    def uri_text(self) -> str:
        return qr.build(self.uri)

    def push(
        self,
        push_type: PushType = PushType.DEFAULT,
        numbers: tuple[int, ...] | None = None,
        *,
        secret: bytes | None = None,
        mechanism_uid: str | None = None,
    ) -> str:
        assert self.registration is not None
        now = self.clock.now_ms()
        message_id = new_message_id(MessageKind.AUTHENTICATE, now)
        claims = PushClaims(
            mechanism_uid=mechanism_uid or self.registration.mechanism_uid,
            challenge=new_challenge(),
            lb_cookie=self.uri.lb_cookie,
            ttl_seconds=120,
            created_ms=now,
            message=f"Login attempt {len(self.pushes) + 1} from bjensen at ForgeRock",
            push_type=push_type,
            username="bjensen",
            numbers=numbers,
        )
        self.pushes[message_id] = (claims.challenge, push_jwt(claims, secret or self.secret))
        return message_id

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            try:
                response = self._dispatch(request)
            except BadDeviceMessage as exc:
                body = {"code": 400, "reason": "Bad Request", "message": exc.message}
                return httpx.Response(400, json=body)
            if self.set_cookie:
                response.headers["Set-Cookie"] = self.set_cookie
            return response

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or request.url.path != self.path:
            return httpx.Response(404, json={"code": 404})
        body = json.loads(request.content)
        action = request.url.params.get("_action")
        if action == "register":
            message = parse_message_request(body)
            if self.registration is not None or str(message.message_id) != self.uri.message_id:
                raise BadDeviceMessage(REFUSED)
            self.registration = verify_registration(message.jwt, self.secret, self.uri.challenge)
        elif action == "authenticate":
            message = parse_message_request(body)
            entry = self.pushes.get(str(message.message_id))
            if entry is None:
                raise BadDeviceMessage(REFUSED)  # unknown, or already answered
            answer = verify_authentication(message.jwt, self.secret, entry[0])
            del self.pushes[str(message.message_id)]
            self.answers[str(message.message_id)] = answer
        elif action == "refresh":
            refresh = parse_refresh_request(body)
            if self.registration is None or (refresh.mechanism_uid, refresh.username) != (
                self.registration.mechanism_uid,
                "bjensen",
            ):
                raise BadDeviceMessage(REFUSED)
            self.refreshes.append(verify_refresh(refresh.jwt, self.secret, refresh.mechanism_uid))
        elif action == "pending":
            poll = parse_poll_request(body)
            if self.registration is None or poll.mechanism_uid != self.registration.mechanism_uid:
                raise BadDeviceMessage(REFUSED)
            verify_poll(poll.jwt, self.secret, poll.mechanism_uid, self.clock.now_ms(), 60)
            items: list[object] = [
                {"messageId": message_id, "message": token}
                for message_id, (_, token) in self.pushes.items()
            ]
            return httpx.Response(200, json={"notifications": [*items, *self.junk]})
        else:
            raise BadDeviceMessage(REFUSED)
        return httpx.Response(200, json={})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def am(clock: FakeClock) -> FakeAm:
    return FakeAm("http://am.test/am", clock)


@pytest.fixture
async def client(am: FakeAm, clock: FakeClock) -> AsyncIterator[DeviceClient]:
    async with DeviceClient(
        new_device("Pixel 8"), transport=httpx.MockTransport(am.handle), clock=clock
    ) as device_client:
        yield device_client


async def test_register(am: FakeAm, client: DeviceClient) -> None:
    mechanism = await client.register(am.uri_text)
    assert am.registration is not None
    assert am.registration.mechanism_uid == mechanism.mechanism_uid
    assert am.registration.device == DeviceDetails(
        client.device.device_id, "android", "gcm", "Pixel 8"
    )
    assert client.device.mechanisms == (mechanism,)
    assert (mechanism.issuer, mechanism.account, mechanism.user_id) == (
        "ForgeRock",
        "bjensen",
        "bjensen",
    )
    request = am.requests[0]
    assert str(request.url) == am.uri.register_url
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept-API-Version"] == "resource=1.0, protocol=1.0"
    assert request.headers["Cookie"] == "amlbcookie=01"
    assert (
        request.content
        == json.dumps(
            registration_body(am.uri, mechanism.mechanism_uid, client.device), separators=(",", ":")
        ).encode()
    )


async def test_refused_registration_changes_nothing(am: FakeAm, client: DeviceClient) -> None:
    await client.register(am.uri_text)
    before = client.device
    with pytest.raises(SimulatorError) as caught:
        await client.register(am.uri_text)  # the QR code is single use
    assert caught.value.status == 400
    assert "Bad Request" in (caught.value.body or "")
    assert "HTTP 400" in str(caught.value)
    assert client.device == before


@pytest.mark.parametrize("text", ["", "otpauth://totp/x?secret=A", "pushauth://push/a:b?s=x"])
async def test_register_with_a_bad_uri(client: DeviceClient, text: str) -> None:
    with pytest.raises(SimulatorError, match="not a registration URI"):
        await client.register(text)


async def test_pending_keeps_only_what_the_app_would_show(am: FakeAm, client: DeviceClient) -> None:
    mechanism = await client.register(am.uri_text)
    first = am.push()
    second = am.push(PushType.CHALLENGE, (12, 34, 56))
    am.push(secret=new_secret())  # forged
    am.push(mechanism_uid=new_mechanism_uid())  # someone else's
    am.junk = [5, {"messageId": "x"}, {"messageId": 7, "message": "a.b.c"}, {"message": "a.b.c"}]
    notifications = await client.pending(mechanism)
    assert [n.message_id for n in notifications] == [first, second]
    assert notifications[1].numbers == (12, 34, 56)
    assert [n.message_id for n in client.device.notifications] == [first, second]
    request = am.requests[-1]
    assert request.url.path == am.path
    assert request.url.params["_action"] == "pending"
    assert request.headers["Cookie"] == "amlbcookie=01"


async def test_pending_twice_keeps_one_copy(am: FakeAm, client: DeviceClient) -> None:
    mechanism = await client.register(am.uri_text)
    am.push()
    await client.pending(mechanism)
    await client.pending(mechanism)
    assert len(client.device.notifications) == 1


async def test_approve_and_replay(am: FakeAm, client: DeviceClient, clock: FakeClock) -> None:
    mechanism = await client.register(am.uri_text)
    message_id = am.push()
    (notification,) = await client.pending(mechanism)
    answered = await client.approve(notification)
    assert answered.answered
    assert am.answers[message_id] == Answer(approved=True, number=None, detail=None)
    assert client.device.newest_unanswered(clock.now_ms()) is None
    assert str(am.requests[-1].url) == am.uri.authenticate_url
    with pytest.raises(SimulatorError) as caught:
        await client.approve(notification)  # AM forgets the message once answered
    assert caught.value.status == 400


async def test_number_challenge_and_deny(am: FakeAm, client: DeviceClient) -> None:
    mechanism = await client.register(am.uri_text)
    challenge_id = am.push(PushType.CHALLENGE, (12, 34, 56))
    deny_id = am.push()
    notifications = {n.message_id: n for n in await client.pending(mechanism)}
    await client.approve(notifications[challenge_id], number=34, detail="mine")
    await client.deny(notifications[deny_id])
    assert am.answers[challenge_id] == Answer(approved=True, number=34, detail="mine")
    assert am.answers[deny_id] == Answer(approved=False, number=None, detail=None)


async def test_push_received_out_of_band(am: FakeAm, client: DeviceClient) -> None:
    await client.register(am.uri_text)
    message_id = am.push()
    notification = client.receive(message_id, am.pushes[message_id][1])
    await client.approve(notification)
    assert am.answers[message_id].approved
    with pytest.raises(SimulatorError, match="no mechanism"):
        client.receive("x", push_jwt(CHALLENGE_PUSH, new_secret()))


async def test_refresh_updates_the_token(am: FakeAm, client: DeviceClient) -> None:
    mechanism = await client.register(am.uri_text)
    await client.refresh(mechanism, device_id="rotated-token", device_name="Pixel 9")
    assert am.refreshes == [DeviceDetails("rotated-token", "android", "gcm", "Pixel 9")]
    assert (client.device.device_id, client.device.device_name) == ("rotated-token", "Pixel 9")
    assert am.requests[-1].url.params["_action"] == "refresh"


async def test_failed_refresh_keeps_the_old_token(am: FakeAm, client: DeviceClient) -> None:
    mechanism = await client.register(am.uri_text)
    before = client.device.device_id
    with pytest.raises(SimulatorError):
        await client.refresh(replace(mechanism, user_id="mallory"), device_id="rotated")
    assert client.device.device_id == before


async def test_poll_is_signed_at_the_client_clock(
    am: FakeAm, client: DeviceClient, clock: FakeClock
) -> None:
    mechanism = await client.register(am.uri_text)
    am.clock = FakeClock(clock.ms + 61_000)  # the server's clock runs ahead
    with pytest.raises(SimulatorError) as caught:
        await client.pending(mechanism)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (httpx.Response(200, json={"ok": True}), "other than"),
        (httpx.Response(200, text="OK"), "without JSON"),
        (httpx.Response(201, json={}), "refused"),
        (httpx.Response(204), "refused"),
        (httpx.Response(302, headers={"Location": "/elsewhere"}), "refused"),
        (httpx.Response(500, text="boom"), "refused"),
        (httpx.Response(200, content=b"{" + b" " * (1024 * 1024 + 1) + b"}"), "larger than"),
    ],
)
async def test_only_200_empty_object_is_success(
    am: FakeAm, clock: FakeClock, response: httpx.Response, match: str
) -> None:
    # Legacy Android accepts exactly 200 (spec §4.1); so does the simulator.
    transport = httpx.MockTransport(lambda request: response)
    async with DeviceClient(new_device(), transport=transport, clock=clock) as device_client:
        with pytest.raises(SimulatorError, match=match) as caught:
            await device_client.register(am.uri_text)
        assert caught.value.status == response.status_code
        assert device_client.device.mechanisms == ()


async def test_pending_answer_must_hold_a_list(am: FakeAm, clock: FakeClock) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={}))
    async with DeviceClient(new_device(), transport=transport, clock=clock) as device_client:
        mechanism = await device_client.register(am.uri_text)
        with pytest.raises(SimulatorError, match="notifications list"):
            await device_client.pending(mechanism)


async def test_network_failure_is_a_simulator_error(am: FakeAm, clock: FakeClock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with DeviceClient(
        new_device(), transport=httpx.MockTransport(refuse), clock=clock
    ) as device_client:
        with pytest.raises(SimulatorError, match="failed") as caught:
            await device_client.register(am.uri_text)
        assert caught.value.status is None


async def test_shared_http_client_is_not_closed(am: FakeAm, clock: FakeClock) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(am.handle)) as shared:
        async with DeviceClient(new_device(), http=shared, clock=clock) as one:
            await one.register(am.uri_text)
        assert not shared.is_closed  # not ours to close
        async with DeviceClient(new_device(), http=shared, clock=clock) as two:
            with pytest.raises(SimulatorError, match="HTTP 400"):
                await two.register(am.uri_text)  # still usable; the QR code is spent


async def test_server_cookies_are_not_kept(am: FakeAm, client: DeviceClient) -> None:
    # OkHttp keeps no cookies: without an LB cookie in the QR, no Cookie header at all.
    am.uri = replace(am.uri, lb_cookie="")
    am.set_cookie = "session=device-one; Path=/"
    mechanism = await client.register(am.uri_text)
    await client.pending(mechanism)
    await client.pending(mechanism)
    assert "Cookie" not in am.requests[-1].headers


def test_http_and_transport_are_exclusive() -> None:
    with pytest.raises(ValueError, match="either"):
        DeviceClient(
            new_device(),
            http=httpx.AsyncClient(),
            transport=httpx.MockTransport(lambda r: httpx.Response(200)),
        )


# --- the CLI against a real loopback server ---------------------------------------------------


class _LoopbackAm(HTTPServer):
    fake: FakeAm


class _Handler(BaseHTTPRequestHandler):
    server: _LoopbackAm

    def do_POST(self) -> None:
        content = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        host, port = self.server.server_address[:2]
        request = httpx.Request(
            "POST",
            f"http://{host!s}:{port}{self.path}",
            headers=list(self.headers.items()),
            content=content,
        )
        response = self.server.fake.handle(request)
        self.send_response(response.status_code)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.content)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean


@pytest.fixture
def live_am() -> Iterator[FakeAm]:
    server = _LoopbackAm(("127.0.0.1", 0), _Handler)
    server.fake = FakeAm(f"http://127.0.0.1:{server.server_address[1]}/am", SystemClock())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _cli(state: Path, *args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(device_group, [*args, "--state", str(state)], input=input)


def test_cli_register_pending_approve_deny(live_am: FakeAm, tmp_path: Path) -> None:
    state = tmp_path / "phone.json"
    result = _cli(state, "register", live_am.uri_text, "--device-name", "Pixel 8", "--json")
    assert result.exit_code == 0, result.output
    registered = json.loads(result.stdout)
    assert live_am.registration is not None
    assert registered["mechanismUid"] == live_am.registration.mechanism_uid
    assert live_am.registration.device.device_name == "Pixel 8"
    assert load_device(state) is not None

    challenge_id = live_am.push(PushType.CHALLENGE, (21, 42, 84))
    result = _cli(state, "pending", "--json")
    assert result.exit_code == 0, result.output
    (shown,) = json.loads(result.stdout)
    assert shown["messageId"] == challenge_id
    assert (shown["type"], shown["numbers"], shown["expired"]) == ("challenge", [21, 42, 84], False)
    assert shown["message"] == "Login attempt 1 from bjensen at ForgeRock"

    result = _cli(state, "approve")
    assert result.exit_code != 0
    assert "--number" in result.output and "21, 42, 84" in result.output
    assert challenge_id not in live_am.answers

    result = _cli(state, "approve", "--number", "42")
    assert result.exit_code == 0, result.output
    assert f"Approved {challenge_id}" in result.output
    assert live_am.answers[challenge_id] == Answer(approved=True, number=42, detail=None)

    # Nothing stored is unanswered, so deny fetches pending first.
    deny_id = live_am.push()
    result = _cli(state, "deny", "--detail", "not me", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["messageId"] == deny_id
    assert live_am.answers[deny_id] == Answer(approved=False, number=None, detail="not me")

    saved = load_device(state)
    assert saved is not None
    assert all(n.answered for n in saved.notifications)


def test_cli_answers_a_given_message_id_and_reports_a_replay(
    live_am: FakeAm, tmp_path: Path
) -> None:
    state = tmp_path / "phone.json"
    assert _cli(state, "register", live_am.uri_text).exit_code == 0
    older, newer = live_am.push(), live_am.push()
    assert _cli(state, "pending").exit_code == 0
    result = _cli(state, "approve", "--message-id", older)
    assert result.exit_code == 0, result.output
    assert older in live_am.answers and newer not in live_am.answers
    result = _cli(state, "approve", "--message-id", older)
    assert result.exit_code == 1
    assert "HTTP 400" in result.output and "Traceback" not in result.output
    result = _cli(state, "approve", "--message-id", "AUTHENTICATE:nope")
    assert result.exit_code == 1 and "no notification" in result.output


def test_cli_with_nothing_to_answer(live_am: FakeAm, tmp_path: Path) -> None:
    state = tmp_path / "phone.json"
    assert _cli(state, "register", live_am.uri_text).exit_code == 0
    result = _cli(state, "pending")
    assert result.exit_code == 0 and "No pending notifications." in result.output
    result = _cli(state, "approve")
    assert result.exit_code == 1
    assert "no unanswered notification" in result.output


def test_cli_register_reads_stdin_and_honours_the_env_var(live_am: FakeAm, tmp_path: Path) -> None:
    state = tmp_path / "env-phone.json"
    result = CliRunner(env={"PUSHGATE_DEVICE_STATE": str(state)}).invoke(
        device_group, ["register", "-"], input=live_am.uri_text + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "Registered bjensen at ForgeRock" in result.output
    device = load_device(state)
    assert device is not None and len(device.mechanisms) == 1


def test_cli_register_refuses_to_rename_an_existing_device(live_am: FakeAm, tmp_path: Path) -> None:
    state = tmp_path / "phone.json"
    save_device(new_device("Old name"), state)
    result = _cli(state, "register", live_am.uri_text, "--device-name", "New name")
    assert result.exit_code == 1 and "another id or name" in result.output
    assert live_am.registration is None


def test_cli_needs_a_registered_device(tmp_path: Path) -> None:
    for command in ("pending", "approve", "deny"):
        result = _cli(tmp_path / "absent.json", command)
        assert result.exit_code == 1
        assert "pushgate device register URI" in result.output


def test_cli_bad_uri(tmp_path: Path) -> None:
    result = _cli(tmp_path / "phone.json", "register", "https://example.com/")
    assert result.exit_code == 1
    assert "not a registration URI" in result.output
    assert not (tmp_path / "phone.json").exists()


def test_cli_corrupt_state(tmp_path: Path) -> None:
    state = tmp_path / "phone.json"
    state.write_text('{"version": 1}')
    result = _cli(state, "pending")
    assert result.exit_code == 1 and "state file" in result.output


def test_cli_server_down(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/am/json/push/sns/message"
    mechanism = replace(
        AM8_MECHANISM,
        register_url=f"{endpoint}?_action=register",
        authenticate_url=f"{endpoint}?_action=authenticate",
    )
    state = tmp_path / "phone.json"
    save_device(PIXEL.with_mechanism(mechanism), state)
    before = state.read_bytes()
    result = _cli(state, "pending")
    assert result.exit_code == 1
    assert "failed" in result.output and "Traceback" not in result.output
    assert state.read_bytes() == before
