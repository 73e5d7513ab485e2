"""Web Push (RFC 8030/8291/8292) against a loopback push service over TLS that verifies VAPID
and decrypts what we send (security.md §9 H10), plus the key file, the subscription parser and
`GET /v1/webpush/key`."""

from __future__ import annotations

import dataclasses
import json
import socket
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pushgate.api.app import create_app
from pushgate.errors import ConfigError
from pushgate.settings import Settings, load_settings
from pushgate.transports.base import (
    Delivered,
    PushRequest,
    Rejected,
    RetryAfter,
    TokenGone,
    data_message,
)
from pushgate.transports.vapid import VapidKey, key_file
from pushgate.transports.webpush import WebPushConfig, WebPushTransport
from pushgate.transports.webpush_wire import (
    MAX_PLAINTEXT_BYTES,
    Subscription,
    encrypt,
    parse_subscription,
    topic,
)
from pushgate.wiring import build_app, build_services
from tests.support import TEST_SECRET_KEY, FakeClock
from tests.transports.certs import LoopbackPki
from tests.transports.webpush_service import (
    Browser,
    PushService,
    b64url,
    b64url_decode,
    decrypt,
    webpush_serving,
)

SUBJECT = "mailto:ops@example.com"
JWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJ1IjoieCJ9.c2lnbmF0dXJl"


@pytest.fixture
def vapid(tmp_path: Path) -> VapidKey:
    return VapidKey(tmp_path / "vapid.pem")


@pytest.fixture
async def service(
    vapid: VapidKey, clock: FakeClock, pki: LoopbackPki
) -> AsyncIterator[PushService]:
    async with webpush_serving(PushService(vapid.load().public_key(), SUBJECT, clock), pki) as s:
        yield s


@pytest.fixture
async def webpush(
    vapid: VapidKey, clock: FakeClock, pki: LoopbackPki
) -> AsyncIterator[WebPushTransport]:
    transport = WebPushTransport(WebPushConfig(vapid, SUBJECT, str(pki.ca_file)), clock, timeout=5)
    yield transport
    await transport.aclose()


def prompt(token: str, clock: FakeClock, **changes: object) -> PushRequest:
    fields: dict[str, object] = {
        "token": token,
        "message_id": f"AUTHENTICATE:{uuid.uuid4()}{clock.now_ms()}",
        "expires_ms": clock.now_ms() + 120_000,
        "collapse_id": "session-1",
        "jwt": JWT,
        "title": "Sign-in request",
        "body": "Login attempt from alice at pushgate",
        "extras": {"messageType": "mtoken.operationInit", "operationId": "session-1"},
    }
    fields.update(changes)
    return PushRequest(**fields)  # type: ignore[arg-type]


# --- RFC 8291 -------------------------------------------------------------------------------


def test_encryption_matches_rfc_8291_appendix_a() -> None:
    # RFC 8291 Appendix A, every value as the RFC prints it.
    sender = ec.derive_private_key(
        int.from_bytes(b64url_decode("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")),
        ec.SECP256R1(),
    )
    subscription = Subscription(
        "https://push.example.net/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV",
        b64url_decode(
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
        ),
        b64url_decode("BTBZMqHH6r4Tts7J_aSIgg"),
    )
    body = encrypt(
        b"When I grow up, I want to be a watermelon",
        subscription,
        salt=b64url_decode("DGv6ra1nlYgDCS1FRnbzlw"),
        sender_key=sender,
    )
    assert b64url(body) == (
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAm"
        "S6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSx"
        "sj_Qulcy4a-fN"
    )


def test_the_largest_plaintext_fills_one_4096_byte_record() -> None:
    browser = Browser("b")
    subscription = parse_subscription(browser.subscription("https://push.example"))
    sender = ec.generate_private_key(ec.SECP256R1())
    body = encrypt(b"x" * MAX_PLAINTEXT_BYTES, subscription, salt=bytes(16), sender_key=sender)
    assert MAX_PLAINTEXT_BYTES == 3993
    assert len(body) == 4096
    assert decrypt(body, browser) == b"x" * MAX_PLAINTEXT_BYTES
    with pytest.raises(ValueError, match="3993"):
        encrypt(b"x" * 3994, subscription, salt=bytes(16), sender_key=sender)


def test_topic_is_32_url_safe_characters_stable_per_session() -> None:
    first = topic("4f8e5a0c-8b1e-4f63-9a0e-3c6c1e9f0b7d")
    assert len(first) == 32
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert topic("4f8e5a0c-8b1e-4f63-9a0e-3c6c1e9f0b7d") == first
    assert topic("another session") != first


# --- the subscription a browser registers ---------------------------------------------------


def test_a_browser_subscription_parses() -> None:
    browser = Browser("b")
    parsed = parse_subscription(browser.subscription("https://fcm.googleapis.com:443/wp"))
    assert parsed == Subscription(
        "https://fcm.googleapis.com:443/wp/push/b", browser.p256dh, browser.auth
    )
    assert parsed.origin == "https://fcm.googleapis.com:443"


def _with(**changes: object) -> str:
    browser = Browser("b")
    document = json.loads(browser.subscription("https://push.example"))
    for path, value in changes.items():
        target = document
        *parents, last = path.split("__")
        for parent in parents:
            target = target[parent]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return json.dumps(document)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "JSON object"),
        ("[]", "JSON object"),
        (
            '{"endpoint": "https://a.example/x", "endpoint": "https://b.example/x", "keys": {}}',
            "JSON",
        ),
        (_with(endpoint=None), "endpoint"),
        (_with(keys=None), "keys"),
        (_with(keys__auth=None), "p256dh. and .auth"),
        (_with(endpoint="http://push.example/x"), "https://"),
        (_with(endpoint="https:///x"), "https://"),
        (_with(endpoint="https://user:pw@push.example/x"), "user name"),
        (_with(endpoint="https://push.example/x#y"), "fragment"),
        (_with(endpoint="https://push.example:99999/x"), "not a URL"),
        (_with(endpoint="https://push.example/a b"), "not a URL"),
        (_with(endpoint="https://push.example/" + "x" * 2048), "2048"),
        (_with(keys__p256dh="BCVx+/"), "not base64url"),
        (_with(keys__p256dh=b64url(b"\x04" + bytes(64))), "P-256"),
        (_with(keys__auth=b64url(bytes(15))), "16-byte"),
        ("{" + " " * 5000 + "}", "4096"),
    ],
)
def test_a_bad_subscription_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_subscription(text)


def test_padded_keys_and_unknown_names_are_accepted() -> None:
    browser = Browser("b")
    document = json.loads(browser.subscription("https://push.example"))
    document["keys"]["auth"] += "=="
    document["later"] = True
    assert parse_subscription(json.dumps(document)).auth == browser.auth


# --- sending through the loopback push service ----------------------------------------------


async def test_a_prompt_arrives_encrypted_for_the_browser_and_signed_with_vapid(
    service: PushService, webpush: WebPushTransport, clock: FakeClock
) -> None:
    browser = service.browser("alice")
    request = prompt(browser.subscription(service.base_url), clock)
    result = await webpush.send(request)
    assert isinstance(result, Delivered)
    assert result.provider_id == f"{service.base_url}/message/1"
    [received] = service.received
    # H10: what the browser decrypts is exactly the push: AM's two keys plus the extras.
    assert json.loads(received.plaintext) == {
        "message": JWT,
        "messageId": request.message_id,
        "messageType": "mtoken.operationInit",
        "operationId": "session-1",
    }
    assert received.headers["ttl"] == "120"
    assert received.headers["urgency"] == "high"
    assert received.headers["topic"] == topic("session-1")
    assert received.headers["content-type"] == "application/octet-stream"
    assert received.vapid_claims["aud"] == service.base_url
    assert received.vapid_claims["sub"] == SUBJECT


async def test_every_message_has_a_fresh_key_and_salt(
    service: PushService, webpush: WebPushTransport, clock: FakeClock
) -> None:
    browser = service.browser("alice")
    request = prompt(browser.subscription(service.base_url), clock)
    assert isinstance(await webpush.send(request), Delivered)
    assert isinstance(await webpush.send(request), Delivered)
    first, second = service.received
    assert first.plaintext == second.plaintext
    assert first.body[:16] != second.body[:16]  # salt
    assert first.body[21:86] != second.body[21:86]  # the sender's ephemeral key


async def test_ttl_is_what_is_left_of_the_session(
    service: PushService, webpush: WebPushTransport, clock: FakeClock
) -> None:
    browser = service.browser("alice")
    request = prompt(browser.subscription(service.base_url), clock)
    clock.advance(100.5)
    assert isinstance(await webpush.send(request), Delivered)
    assert service.received[0].headers["ttl"] == "19"


async def test_nothing_is_sent_after_the_deadline(
    service: PushService, webpush: WebPushTransport, clock: FakeClock
) -> None:
    browser = service.browser("alice")
    request = prompt(browser.subscription(service.base_url), clock)
    clock.advance(120)
    assert await webpush.send(request) == Rejected("the session's deadline has passed")
    assert service.received == []


async def test_a_silent_push_carries_the_extras_only(
    service: PushService, webpush: WebPushTransport, clock: FakeClock
) -> None:
    browser = service.browser("alice")
    extras = {
        "messageType": "mtoken.operationFinished",
        "mtokenOperationResult": "operation.canceled",
    }
    request = prompt(browser.subscription(service.base_url), clock, jwt=None, extras=extras)
    assert isinstance(await webpush.send(request), Delivered)
    [received] = service.received
    assert json.loads(received.plaintext) == extras
    assert received.headers["urgency"] == "normal"


async def test_the_size_guard_stops_what_a_record_cannot_hold(
    service: PushService, webpush: WebPushTransport, clock: FakeClock
) -> None:
    browser = service.browser("alice")
    base = prompt(browser.subscription(service.base_url), clock, extras={"pad": ""})
    fixed = len(json.dumps(data_message(base), separators=(",", ":")))

    def padded(size: int) -> PushRequest:
        return dataclasses.replace(base, extras={"pad": "x" * (size - fixed)})

    # 3993 bytes of plaintext still fit (the push service decrypts a 4096-byte body) ...
    assert isinstance(await webpush.send(padded(MAX_PLAINTEXT_BYTES)), Delivered)
    assert len(service.received[0].plaintext) == MAX_PLAINTEXT_BYTES
    assert len(service.received[0].body) == 4096
    # ... one more is refused before anything is sent, so the service never answers 413.
    result = await webpush.send(padded(MAX_PLAINTEXT_BYTES + 1))
    assert result == Rejected("payload too large: 3994 bytes, Web Push takes 3993")
    assert len(service.received) == 1


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (202, {}, Delivered),
        (404, {}, TokenGone),
        (410, {}, TokenGone),
        (413, {}, Rejected),
        (400, {}, Rejected),
        (403, {}, Rejected),
        (429, {"retry-after": "7"}, RetryAfter),
        (500, {}, RetryAfter),
        (503, {"retry-after": "30"}, RetryAfter),
    ],
)
async def test_each_answer_of_the_push_service(
    service: PushService,
    webpush: WebPushTransport,
    clock: FakeClock,
    status: int,
    headers: dict[str, str],
    expected: type,
) -> None:
    browser = service.browser("alice")
    service.answers["alice"] = (status, headers)
    result = await webpush.send(prompt(browser.subscription(service.base_url), clock))
    assert isinstance(result, expected)
    assert len(service.received) == 1  # verified and decrypted before the answer
    if isinstance(result, RetryAfter):
        assert result.seconds == (float(headers["retry-after"]) if headers else None)
    if isinstance(result, TokenGone | Rejected):
        assert str(status) in result.reason


async def test_an_unknown_subscription_is_gone(
    service: PushService, webpush: WebPushTransport, clock: FakeClock
) -> None:
    browser = Browser("never-subscribed")  # the service does not know it: 404
    result = await webpush.send(prompt(browser.subscription(service.base_url), clock))
    assert isinstance(result, TokenGone)


async def test_a_stored_token_that_is_no_subscription_is_gone(
    webpush: WebPushTransport, clock: FakeClock
) -> None:
    result = await webpush.send(prompt('{"endpoint": "http://push.example/x"}', clock))
    assert isinstance(result, TokenGone)


async def test_a_service_that_cannot_be_reached_is_retried(
    webpush: WebPushTransport, clock: FakeClock, unused_port: int
) -> None:
    token = Browser("b").subscription(f"https://127.0.0.1:{unused_port}")
    result = await webpush.send(prompt(token, clock))
    assert isinstance(result, RetryAfter)
    assert result.seconds is None


async def test_an_untrusted_certificate_is_never_sent_to(
    service: PushService, vapid: VapidKey, clock: FakeClock
) -> None:
    browser = service.browser("alice")
    transport = WebPushTransport(WebPushConfig(vapid, SUBJECT), clock, timeout=5)
    try:
        result = await transport.send(prompt(browser.subscription(service.base_url), clock))
    finally:
        await transport.aclose()
    assert isinstance(result, RetryAfter)
    assert "certificate" in result.reason.lower() or "ConnectError" in result.reason
    assert service.received == []


async def test_the_vapid_token_is_reused_until_near_its_expiry(
    service: PushService, webpush: WebPushTransport, clock: FakeClock
) -> None:
    browser = service.browser("alice")
    token = browser.subscription(service.base_url)
    await webpush.send(prompt(token, clock))
    clock.advance(60)
    await webpush.send(prompt(token, clock))
    clock.advance(11 * 3600)  # within an hour of the first token's exp: a new one
    await webpush.send(prompt(token, clock))
    first, second, third = (r.headers["authorization"] for r in service.received)
    assert first == second != third
    assert service.refused == []


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- configuration and the key file ---------------------------------------------------------


def test_web_push_needs_a_subject(vapid: VapidKey) -> None:
    assert WebPushConfig.from_settings(Settings(), vapid) is None
    config = WebPushConfig.from_settings(Settings(vapid_subject="https://example.com/c"), vapid)
    assert config is not None and config.subject == "https://example.com/c"


@pytest.mark.parametrize(
    "subject", ["ops@example.com", "mailto:", "http://example.com", "https://"]
)
def test_a_bad_subject_is_one_line(subject: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"PUSHGATE_VAPID_SUBJECT": subject})
    assert str(caught.value) == (
        "PUSHGATE_VAPID_SUBJECT must be empty, a mailto: address or an https:// URL; "
        f"got {subject!r}"
    )


def test_the_key_file_is_made_on_first_start_owner_only_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "vapid.pem"
    settings = Settings(vapid_private_key_file=str(path))
    (tmp_path / "keys").mkdir()
    first = VapidKey.from_settings(settings).public_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    # Another process (or a restart) reads the same key: subscriptions keep working.
    assert VapidKey.from_settings(settings).public_key == first
    assert len(b64url_decode(first)) == 65


def test_the_default_key_file_sits_beside_the_sqlite_database(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/data/pushgate.db")
    assert key_file(settings) == tmp_path / "data" / "pushgate.vapid.pem"
    VapidKey.from_settings(settings).load()  # the directory is made, as for the secret key
    assert (tmp_path / "data" / "pushgate.vapid.pem").exists()
    assert key_file(Settings(database_url="sqlite:///:memory:")) is None


def test_a_file_that_holds_no_p256_key_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "vapid.pem"
    path.write_text("not a key\n")
    with pytest.raises(ConfigError, match=f"^the VAPID key file {path} must hold a P-256"):
        VapidKey(path).load()


def test_a_key_file_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "missing-directory" / "vapid.pem"
    with pytest.raises(ConfigError, match=r"^cannot create the VAPID key file"):
        VapidKey.from_settings(Settings(vapid_private_key_file=str(path))).load()


# --- GET /v1/webpush/key --------------------------------------------------------------------


async def test_the_key_route_serves_the_public_key_without_an_api_key(
    tmp_path: Path, clock: FakeClock
) -> None:
    settings = Settings(
        database_url="sqlite:///:memory:",
        secret_key=TEST_SECRET_KEY,
        vapid_private_key_file=str(tmp_path / "vapid.pem"),
    )
    services = build_services(settings, clock)
    app = create_app(services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/v1/webpush/key")
        document = (await http.get("/openapi.json")).json()
    await services.store.aclose()
    assert response.status_code == 200
    assert response.json() == {"publicKey": VapidKey(tmp_path / "vapid.pem").public_key}
    assert "/v1/webpush/key" in document["paths"]
    assert document["paths"]["/v1/webpush/key"]["get"]["security"] == []


def test_the_server_makes_the_key_when_it_starts(tmp_path: Path) -> None:
    build_app(
        Settings(database_url=f"sqlite:///{tmp_path}/pushgate.db", secret_key=TEST_SECRET_KEY)
    )
    assert (tmp_path / "pushgate.vapid.pem").exists()
