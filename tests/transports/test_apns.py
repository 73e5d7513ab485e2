"""The APNs transport against the loopback HTTP/2 server (security.md §9 H1 to H6)."""

from __future__ import annotations

import itertools
import logging
import uuid
from pathlib import Path
from typing import Any

import anyio
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pushgate.errors import ConfigError
from pushgate.settings import load_settings
from pushgate.transports.apns import ApnsConfig, ApnsTransport, ProviderTokens
from pushgate.transports.base import Delivered, PushRequest, Rejected, RetryAfter, TokenGone
from tests.support import FakeClock
from tests.transports.apns_server import Answer, ApnsServer
from tests.transports.certs import LoopbackPki
from tests.transports.conftest import KEY_ID, TEAM_ID, TOPIC, apns_settings
from tests.transports.connect_proxy import connect_proxy

DEVICE_TOKEN = "a1b2" * 16
SESSION_ID = "7d3b0a7e-5a55-4a53-9c1e-2f6a9e0e4b11"


def push(clock: FakeClock, **changes: Any) -> PushRequest:
    fields: dict[str, Any] = {
        "token": DEVICE_TOKEN,
        "message_id": "AUTHENTICATE:7d3b0a7e-5a55-4a53-9c1e-2f6a9e0e4b111790000000000",
        "expires_ms": clock.now_ms() + 120_000,
        "collapse_id": SESSION_ID,
        "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJ1IjoieCJ9.c2ln",
        "body": "Login attempt from alice at pushgate",
        "push_type": "challenge",
        "extras": {
            "messageType": "mtoken.operationInit",
            "operationId": SESSION_ID,
            "operationName": "login",
        },
    }
    fields.update(changes)
    return PushRequest(**fields)


async def test_a_prompt_carries_ams_aps_layout_and_the_headers_apple_needs(
    apns: ApnsTransport, apns_server: ApnsServer, clock: FakeClock
) -> None:
    request = push(clock)
    result = await apns.send(request)

    assert result == Delivered(str(request.request_id))
    (received,) = apns_server.received
    assert received.headers[":path"] == f"/3/device/{DEVICE_TOKEN}"
    assert received.headers["apns-topic"] == TOPIC
    assert received.headers["apns-push-type"] == "alert"
    assert received.headers["apns-priority"] == "10"
    assert received.headers["apns-expiration"] == str(request.expires_ms // 1000)
    assert received.headers["apns-collapse-id"] == SESSION_ID
    assert uuid.UUID(received.headers["apns-id"]) == request.request_id
    assert received.payload == {
        "messageType": "mtoken.operationInit",
        "operationId": SESSION_ID,
        "operationName": "login",
        "aps": {
            "alert": "Login attempt from alice at pushgate",
            "sound": "default",
            "category": "authentication_challenge",
            "interruption-level": "time-sensitive",
            "messageId": request.message_id,
            "data": request.jwt,
            "content-available": 1,
            "mutable-content": 1,
        },
    }


async def test_a_silent_push_is_background_priority_5_with_content_available_only(
    apns: ApnsTransport, apns_server: ApnsServer, clock: FakeClock
) -> None:
    extras = {"messageType": "mtoken.operationFinished", "operationId": SESSION_ID}
    result = await apns.send(push(clock, jwt=None, message_id="finished:1", extras=extras))

    assert isinstance(result, Delivered)
    (received,) = apns_server.received
    assert received.headers["apns-push-type"] == "background"
    assert received.headers["apns-priority"] == "5"
    assert received.payload == {**extras, "aps": {"content-available": 1}}


async def test_h1_one_provider_token_replaced_between_20_and_60_minutes(
    apns: ApnsTransport, apns_server: ApnsServer, clock: FakeClock
) -> None:
    start = clock.now_ms()
    results = []
    for _ in range(100):  # 100 pushes over one hour
        results.append(await apns.send(push(clock)))
        clock.advance(36)

    assert all(isinstance(r, Delivered) for r in results)
    tokens = apns_server.distinct_tokens
    assert 2 <= len(tokens) <= 3
    issued = [int(jwt.decode(t, options={"verify_signature": False})["iat"]) for t in tokens]
    assert issued[0] == start // 1000
    assert all(later - earlier >= 20 * 60 for earlier, later in itertools.pairwise(issued))
    sent_at = start // 1000
    for received in apns_server.received:
        iat = jwt.decode(received.token, options={"verify_signature": False})["iat"]
        assert sent_at - iat <= 60 * 60
        sent_at += 36


async def test_h2_unregistered_marks_the_token_dead_once(
    apns: ApnsTransport, apns_server: ApnsServer, clock: FakeClock
) -> None:
    apns_server.script.append(Answer(410, "Unregistered", timestamp_ms=1_789_000_000_000))

    result = await apns.send(push(clock))

    assert result == TokenGone("APNs 410 Unregistered", since_ms=1_789_000_000_000)
    assert len(apns_server.received) == 1


async def test_h3_bad_device_token_is_dead_and_logged_as_a_possible_environment_mismatch(
    apns: ApnsTransport,
    apns_server: ApnsServer,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    apns_server.script.append(Answer(400, "BadDeviceToken"))

    with caplog.at_level(logging.WARNING, logger="pushgate.transports.apns"):
        result = await apns.send(push(clock))

    assert isinstance(result, TokenGone)
    assert len(apns_server.received) == 1
    (record,) = caplog.records
    assert "sandbox" in record.getMessage()
    assert DEVICE_TOKEN not in record.getMessage()  # a push token is logged truncated only


async def test_h3_other_400s_are_not_retried(
    apns: ApnsTransport, apns_server: ApnsServer, clock: FakeClock
) -> None:
    apns_server.script.append(Answer(400, "DeviceTokenNotForTopic"))

    assert await apns.send(push(clock)) == Rejected("APNs 400 DeviceTokenNotForTopic")
    assert len(apns_server.received) == 1


async def test_h3_a_payload_over_4096_bytes_never_reaches_apns(
    apns: ApnsTransport, apns_server: ApnsServer, clock: FakeClock
) -> None:
    result = await apns.send(push(clock, body="x" * 4000))

    assert isinstance(result, Rejected)
    assert "too large" in result.reason
    assert apns_server.received == []


@pytest.mark.parametrize(
    "answer",
    [
        Answer(429, "TooManyRequests", headers=(("retry-after", "7"),)),
        Answer(500, "InternalServerError"),
        Answer(503, "ServiceUnavailable"),
        Answer(reason="Shutdown", goaway=True),
    ],
    ids=["429", "500", "503", "goaway-unanswered"],
)
async def test_h4_transient_failures_retry_with_the_same_token_and_id(
    apns: ApnsTransport, apns_server: ApnsServer, clock: FakeClock, answer: Answer
) -> None:
    await apns.send(push(clock, message_id="warm-up"))  # an open, authenticated connection
    apns_server.script.append(answer)
    request = push(clock)

    first = await apns.send(request)
    second = await apns.send(request)

    assert isinstance(first, RetryAfter)
    assert first.seconds == (7.0 if answer.status == 429 else None)
    assert second == Delivered(str(request.request_id))
    failed, retried = apns_server.received[-2:]
    assert retried.headers["apns-id"] == failed.headers["apns-id"]
    assert retried.token == failed.token
    if answer.status >= 500 or answer.goaway:
        assert retried.connection != failed.connection  # a fresh connection
    else:
        assert retried.connection == failed.connection  # 429 keeps a healthy connection


async def test_h4_a_stream_refused_by_goaway_is_resent_at_once_on_a_new_connection(
    apns: ApnsTransport, apns_server: ApnsServer, clock: FakeClock
) -> None:
    await apns.send(push(clock, message_id="warm-up"))
    apns_server.script.append(Answer(reason="Shutdown", goaway=True, refused=True))
    request = push(clock)

    # HTTP/2 says a stream above GOAWAY's last_stream_id was never processed: httpx sends
    # it again itself, on a new connection (aioapns #63: never keep using the old one).
    assert await apns.send(request) == Delivered(str(request.request_id))
    refused, resent = apns_server.received[-2:]
    assert resent.headers["apns-id"] == refused.headers["apns-id"]
    assert resent.connection != refused.connection
    assert isinstance(await apns.send(push(clock, message_id="after")), Delivered)


async def test_h5_one_stream_until_authenticated_then_many(
    apns: ApnsTransport, apns_server: ApnsServer, clock: FakeClock
) -> None:
    results: list[object] = []

    async def one(n: int) -> None:
        results.append(await apns.send(push(clock, message_id=f"m{n}")))

    async with anyio.create_task_group() as tasks:
        for n in range(50):
            tasks.start_soon(one, n)

    assert len(results) == 50
    assert all(isinstance(r, Delivered) for r in results)
    assert apns_server.protocol_errors == 0
    # One connection, many streams once the first push was accepted.
    assert apns_server.connections == 1
    assert apns_server.peak_streams > 1


async def test_h6_a_hung_stream_times_out_and_the_retry_uses_a_fresh_connection(
    apns: ApnsTransport, apns_server: ApnsServer, clock: FakeClock
) -> None:
    apns_server.script.append(Answer(hang=True))
    request = push(clock)

    first = await apns.send(request)
    second = await apns.send(request)

    assert isinstance(first, RetryAfter)
    assert "in time" in first.reason
    assert isinstance(second, Delivered)
    assert apns_server.received[0].connection != apns_server.received[1].connection


async def test_an_expired_provider_token_is_replaced_once_and_the_push_resent(
    apns: ApnsTransport, apns_server: ApnsServer, clock: FakeClock
) -> None:
    apns_server.script.append(Answer(403, "ExpiredProviderToken"))

    assert isinstance(await apns.send(push(clock)), Delivered)
    assert len(apns_server.distinct_tokens) == 2
    assert len(apns_server.received) == 2


async def test_a_key_apns_keeps_refusing_is_rejected_without_minting_a_token_per_send(
    apns: ApnsTransport, apns_server: ApnsServer, clock: FakeClock
) -> None:
    apns_server.script.extend([Answer(403, "InvalidProviderToken")] * 4)

    first = await apns.send(push(clock))
    second = await apns.send(push(clock))

    assert first == second == Rejected("APNs 403 InvalidProviderToken")
    assert len(apns_server.received) == 3  # one retry for the first, none for the second
    assert len(apns_server.distinct_tokens) == 2


async def test_nothing_is_sent_after_the_deadline_or_to_a_token_that_is_not_hex(
    apns: ApnsTransport, apns_server: ApnsServer, clock: FakeClock
) -> None:
    late = await apns.send(push(clock, expires_ms=clock.now_ms()))
    strange = await apns.send(push(clock, token="../../3/device/x"))

    assert isinstance(late, Rejected)
    assert isinstance(strange, TokenGone)
    assert apns_server.received == []


async def test_a_closed_server_is_a_retry(
    apns_key_file: Path, pki: LoopbackPki, clock: FakeClock
) -> None:
    config = ApnsConfig.from_settings(apns_settings(apns_key_file, "https://127.0.0.1:9", pki))
    assert config is not None
    transport = ApnsTransport(config, clock)
    try:
        result = await transport.send(push(clock))
    finally:
        await transport.aclose()
    assert isinstance(result, RetryAfter)


async def test_a_server_the_ca_file_does_not_vouch_for_is_refused(
    apns_server: ApnsServer, apns_key_file: Path, pki: LoopbackPki, clock: FakeClock
) -> None:
    settings = apns_settings(apns_key_file, apns_server.url, pki).model_copy(
        update={"tls_ca_file": ""}
    )
    config = ApnsConfig.from_settings(settings)
    assert config is not None
    transport = ApnsTransport(config, clock)
    try:
        result = await transport.send(push(clock))
    finally:
        await transport.aclose()
    assert isinstance(result, RetryAfter)
    assert "CERTIFICATE_VERIFY_FAILED" in result.reason
    assert apns_server.received == []


def test_provider_tokens_are_refreshed_at_45_minutes_not_before(
    apns_key: ec.EllipticCurvePrivateKey,
) -> None:
    clock = FakeClock()
    tokens = ProviderTokens(apns_key, KEY_ID, TEAM_ID, clock)
    first = tokens.current()
    clock.advance(45 * 60 - 1)
    assert tokens.current() == first
    clock.advance(1)
    assert tokens.current() != first
    header = jwt.get_unverified_header(first)
    claims = jwt.decode(first, apns_key.public_key(), algorithms=["ES256"])
    assert header["kid"] == KEY_ID
    assert claims == {"iss": TEAM_ID, "iat": FakeClock().now_ms() // 1000}
    with pytest.raises(ValueError):
        ProviderTokens(apns_key, KEY_ID, TEAM_ID, clock, refresh_seconds=60 * 60)


def test_a_key_file_that_is_no_p8_key_is_a_config_error(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "AuthKey.p8"
    path.write_text("not a key")
    settings = load_settings(
        {
            "PUSHGATE_APNS_KEY_FILE": str(path),
            "PUSHGATE_APNS_KEY_ID": KEY_ID,
            "PUSHGATE_APNS_TEAM_ID": TEAM_ID,
            "PUSHGATE_APNS_TOPIC": TOPIC,
        }
    )
    config = ApnsConfig.from_settings(settings)
    assert config is not None
    with pytest.raises(ConfigError, match="PUSHGATE_APNS_KEY_FILE"):
        ApnsTransport(config, clock)


def test_apns_settings_come_together(apns_key_file: Path) -> None:
    with pytest.raises(ConfigError, match="PUSHGATE_APNS_TEAM_ID"):
        load_settings(
            {
                "PUSHGATE_APNS_KEY_FILE": str(apns_key_file),
                "PUSHGATE_APNS_KEY_ID": KEY_ID,
                "PUSHGATE_APNS_TOPIC": TOPIC,
            }
        )
    with pytest.raises(ConfigError, match="PUSHGATE_APNS_KEY_FILE must be empty or a readable"):
        load_settings({"PUSHGATE_APNS_KEY_FILE": "/nonexistent/AuthKey.p8"})
    assert ApnsConfig.from_settings(load_settings({})) is None


@pytest.mark.parametrize("no_proxy", ["", "127.0.0.1"])
async def test_the_standard_proxy_variables_are_honoured(
    apns_server: ApnsServer,
    apns_key_file: Path,
    pki: LoopbackPki,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    no_proxy: str,
) -> None:
    """docs/PUSH.md: `HTTPS_PROXY` tunnels the HTTP/2 connection (CONNECT); `NO_PROXY` exempts
    a host."""
    async with connect_proxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", no_proxy)
        config = ApnsConfig.from_settings(apns_settings(apns_key_file, apns_server.url, pki))
        assert config is not None
        transport = ApnsTransport(config, clock, timeout=5.0)
        try:
            request = push(clock)
            assert await transport.send(request) == Delivered(str(request.request_id))
        finally:
            await transport.aclose()
    assert len(apns_server.received) == 1
    port = apns_server.url.rsplit(":", 1)[1]
    assert proxy.tunnels == ([] if no_proxy else [f"127.0.0.1:{port}"])
