"""µs per operation of the pure protocol core, next to one raw HMAC-SHA256 (issue 3).

Not part of the test suite (testpaths is `tests`); run it explicitly:

    .venv/bin/pytest benchmarks/test_protocol_bench.py -p no:cacheprovider --benchmark-only
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from pushgate.protocol import device_messages as dm
from pushgate.protocol import jwt
from pushgate.protocol.challenge import challenge_response, new_challenge, new_secret
from pushgate.protocol.push_payload import PushClaims, PushType, push_jwt

SECRET = new_secret()
CHALLENGE = new_challenge()

REGISTER_JWT = jwt.sign(
    {
        "response": challenge_response(SECRET, CHALLENGE),
        "mechanismUid": "0f8c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
        "deviceId": "fcm-token-" + "x" * 150,
        "deviceName": "Pixel 8",
        "deviceType": "android",
        "communicationType": "gcm",
    },
    SECRET,
)
ANSWER_JWT = jwt.sign({"response": challenge_response(SECRET, CHALLENGE)}, SECRET)
CLAIMS = PushClaims(
    mechanism_uid="0f8c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
    challenge=CHALLENGE,
    lb_cookie="amlbcookie=01",
    ttl_seconds=86_400,
    created_ms=1_760_000_000_000,
    message="Sign-in request",
    push_type=PushType.DEFAULT,
    username="alice",
    custom_payload={"title": "Sign-in request"},
)


def test_raw_hmac_sha256(benchmark: Any) -> None:
    digest = benchmark(lambda: hmac.new(SECRET, CHALLENGE, hashlib.sha256).digest())
    assert len(digest) == 32


def test_verify_registration(benchmark: Any) -> None:
    result = benchmark(dm.verify_registration, REGISTER_JWT, SECRET, CHALLENGE)
    assert result.device.communication_type == "gcm"


def test_verify_authentication(benchmark: Any) -> None:
    result = benchmark(dm.verify_authentication, ANSWER_JWT, SECRET, CHALLENGE)
    assert result.approved


def test_build_push_jwt(benchmark: Any) -> None:
    token = benchmark(push_jwt, CLAIMS, SECRET)
    assert token.count(".") == 2


def test_sign_answer_jwt(benchmark: Any) -> None:
    """What the simulated device pays per answer (client side of the cycle)."""
    claims = {"response": challenge_response(SECRET, CHALLENGE)}
    token = benchmark(jwt.sign, claims, SECRET)
    assert token.count(".") == 2
