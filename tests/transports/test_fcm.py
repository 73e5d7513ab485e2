"""The FCM v1 transport with google-auth against the loopback FCM and OAuth servers
(security.md §9 H7 to H9)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pushgate.errors import ConfigError
from pushgate.settings import Settings
from pushgate.transports.base import Delivered, PushRequest, Rejected, RetryAfter, TokenGone
from pushgate.transports.fcm import FcmConfig, FcmTransport
from tests.support import FakeClock
from tests.transports.conftest import PROJECT_ID, service_account_file
from tests.transports.fcm_server import FcmAnswer, FcmServer

REGISTRATION_TOKEN = "fcm-token:APA91bH-example_registration_token"
SESSION_ID = "7d3b0a7e-5a55-4a53-9c1e-2f6a9e0e4b11"


def push(clock: FakeClock, **changes: Any) -> PushRequest:
    fields: dict[str, Any] = {
        "token": REGISTRATION_TOKEN,
        "message_id": "AUTHENTICATE:7d3b0a7e-5a55-4a53-9c1e-2f6a9e0e4b111790000000000",
        "expires_ms": clock.now_ms() + 120_500,
        "collapse_id": SESSION_ID,
        "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJ1IjoieCJ9.c2ln",
        "body": "Login attempt",
        "extras": {"messageType": "mtoken.operationInit", "operationId": SESSION_ID},
    }
    fields.update(changes)
    return PushRequest(**fields)


async def test_a_data_only_message_with_ams_two_keys_the_extras_and_the_ttl_left(
    fcm: FcmTransport, fcm_server: FcmServer, clock: FakeClock
) -> None:
    request = push(clock)

    result = await fcm.send(request)

    assert result == Delivered(f"projects/{PROJECT_ID}/messages/1")
    assert fcm_server.messages == [
        {
            "token": REGISTRATION_TOKEN,
            "data": {
                "message": request.jwt,
                "messageId": request.message_id,
                "messageType": "mtoken.operationInit",
                "operationId": SESSION_ID,
            },
            "android": {"priority": "HIGH", "ttl": "120s", "collapse_key": SESSION_ID},
        }
    ]
    assert fcm_server.token_requests == 1
    assert fcm_server.refused_assertions == 0


async def test_a_silent_push_is_the_extras_at_normal_priority(
    fcm: FcmTransport, fcm_server: FcmServer, clock: FakeClock
) -> None:
    extras = {"messageType": "mtoken.operationFinished", "operationId": SESSION_ID}

    assert isinstance(await fcm.send(push(clock, jwt=None, extras=extras)), Delivered)
    (message,) = fcm_server.messages
    assert message["data"] == extras
    assert message["android"]["priority"] == "NORMAL"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (FcmAnswer(404, "UNREGISTERED"), TokenGone("FCM 404 UNREGISTERED")),
        (FcmAnswer(403, "SENDER_ID_MISMATCH"), TokenGone("FCM 403 SENDER_ID_MISMATCH")),
        (
            FcmAnswer(400, "INVALID_ARGUMENT", bad_token_field=True),
            TokenGone("FCM 400 INVALID_ARGUMENT"),
        ),
        (
            FcmAnswer(
                400,
                "INVALID_ARGUMENT",
                message="The registration token is not a valid FCM registration token",
            ),
            TokenGone("FCM 400 INVALID_ARGUMENT"),
        ),
        (
            FcmAnswer(400, "INVALID_ARGUMENT", message="Invalid value at message.android.ttl"),
            Rejected("FCM 400 INVALID_ARGUMENT"),
        ),
        (FcmAnswer(401, "THIRD_PARTY_AUTH_ERROR"), Rejected("FCM 401 THIRD_PARTY_AUTH_ERROR")),
    ],
    ids=[
        "unregistered",
        "sender-mismatch",
        "bad-token-field",
        "bad-token-text",
        "bad-ttl",
        "apns-key",
    ],
)
async def test_h7_permanent_errors_are_not_retried(
    fcm: FcmTransport,
    fcm_server: FcmServer,
    clock: FakeClock,
    answer: FcmAnswer,
    expected: object,
) -> None:
    fcm_server.script.append(answer)

    assert await fcm.send(push(clock)) == expected
    assert len(fcm_server.messages) == 1
    assert fcm_server.token_requests == 1


@pytest.mark.parametrize(
    ("answer", "seconds"),
    [
        (FcmAnswer(429, "QUOTA_EXCEEDED", retry_after="7"), 7.0),
        (FcmAnswer(503, "UNAVAILABLE"), None),
        (FcmAnswer(500, "INTERNAL", retry_after="Thu, 01 Jan 2099 00:00:00 GMT"), 3600.0),
    ],
    ids=["429", "503", "500-date"],
)
async def test_h8_transient_errors_retry_honouring_retry_after(
    fcm: FcmTransport,
    fcm_server: FcmServer,
    clock: FakeClock,
    answer: FcmAnswer,
    seconds: float | None,
) -> None:
    fcm_server.script.append(answer)

    result = await fcm.send(push(clock))
    again = await fcm.send(push(clock))

    assert isinstance(result, RetryAfter)
    assert result.seconds == seconds  # a far date is capped: the session is gone by then
    assert isinstance(again, Delivered)


async def test_h9_a_401_refreshes_the_token_once_and_resends(
    fcm: FcmTransport, fcm_server: FcmServer, clock: FakeClock
) -> None:
    assert isinstance(await fcm.send(push(clock)), Delivered)
    fcm_server.revoke_tokens()

    assert isinstance(await fcm.send(push(clock)), Delivered)
    assert fcm_server.token_requests == 2
    refused, resent = fcm_server.tokens_used[-2:]
    assert refused != resent


async def test_h9_a_token_that_stays_refused_is_rejected_after_one_refresh(
    fcm: FcmTransport, fcm_server: FcmServer, clock: FakeClock
) -> None:
    fcm_server.script.extend([FcmAnswer(401, message="Request had invalid authentication")] * 2)

    result = await fcm.send(push(clock))

    assert result == Rejected("FCM 401 UNAUTHENTICATED")
    assert fcm_server.token_requests == 2
    assert len(fcm_server.tokens_used) == 2


async def test_h9_one_token_request_per_expiry_window(
    fcm: FcmTransport, fcm_server: FcmServer, clock: FakeClock
) -> None:
    for _ in range(55):  # 55 minutes: the token (an hour) is refreshed 5 minutes ahead
        assert isinstance(await fcm.send(push(clock)), Delivered)
        clock.advance(60)
    assert fcm_server.token_requests == 1

    clock.advance(60)
    assert isinstance(await fcm.send(push(clock)), Delivered)
    assert fcm_server.token_requests == 2
    assert len(set(fcm_server.tokens_used)) == 2


async def test_a_refused_assertion_is_a_configuration_error_not_a_retry(
    fcm_server: FcmServer, pki: Any, clock: FakeClock, tmp_path: Path
) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    credentials = service_account_file(tmp_path, other_key, f"{fcm_server.base_url}/token")
    settings = Settings(
        fcm_credentials_file=str(credentials),
        fcm_url=fcm_server.base_url,
        tls_ca_file=str(pki.ca_file),
    )
    config = FcmConfig.from_settings(settings)
    assert config is not None
    transport = FcmTransport(config, clock)
    try:
        result = await transport.send(push(clock))
    finally:
        await transport.aclose()

    assert isinstance(result, Rejected)
    assert "invalid_grant" in result.reason
    assert fcm_server.refused_assertions == 1
    assert fcm_server.messages == []


async def test_an_unreachable_token_endpoint_is_a_retry(
    fcm_key: rsa.RSAPrivateKey, pki: Any, clock: FakeClock, tmp_path: Path
) -> None:
    credentials = service_account_file(tmp_path, fcm_key, "https://127.0.0.1:9/token")
    settings = Settings(fcm_credentials_file=str(credentials), tls_ca_file=str(pki.ca_file))
    config = FcmConfig.from_settings(settings)
    assert config is not None
    transport = FcmTransport(config, clock)
    try:
        result = await transport.send(push(clock))
    finally:
        await transport.aclose()
    assert isinstance(result, RetryAfter)


async def test_nothing_is_sent_after_the_deadline_or_over_4096_bytes(
    fcm: FcmTransport, fcm_server: FcmServer, clock: FakeClock
) -> None:
    late = await fcm.send(push(clock, expires_ms=clock.now_ms()))
    large = await fcm.send(push(clock, extras={"big": "x" * 4096}))

    assert isinstance(late, Rejected)
    assert isinstance(large, Rejected)
    assert "too large" in large.reason
    assert fcm_server.messages == []
    assert fcm_server.token_requests == 0


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("{not json", "is not JSON"),
        (json.dumps({"type": "authorized_user"}), "is not a service-account key file"),
        (json.dumps({"type": "service_account", "project_id": "p"}), "lacks client_email"),
    ],
)
def test_a_bad_credentials_file_is_a_config_error(
    tmp_path: Path, content: str, complaint: str
) -> None:
    path = tmp_path / "sa.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=f"PUSHGATE_FCM_CREDENTIALS_FILE .*{complaint}"):
        FcmConfig.from_settings(Settings(fcm_credentials_file=str(path)))
