"""Secrets, challenges, challenge responses and number matching (spec §2, §6.2)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from pushgate.protocol.encoding import b64std

SECRET_BYTES = 32  # the Android SDK refuses HS256 keys under 256 bits
CHALLENGE_BYTES = 32


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def new_challenge() -> bytes:
    return secrets.token_bytes(CHALLENGE_BYTES)


def challenge_response(secret: bytes, challenge: bytes) -> str:
    """base64std(HMAC-SHA256(secret, challenge)): the device's `response` claim."""
    return b64std(hmac.new(secret, challenge, hashlib.sha256).digest())


def response_matches(secret: bytes, challenge: bytes, response: object) -> bool:
    """AM compares the claim as a string with its own std-padded Base64, in constant time."""
    if not isinstance(response, str):
        return False
    expected = challenge_response(secret, challenge).encode("ascii")
    return hmac.compare_digest(expected, response.encode("utf-8", "surrogatepass"))


def challenge_number() -> int:
    """The number a `challenge` session shows on the login page, in [10, 99] (OS CSPRNG)."""
    return 10 + secrets.randbelow(90)


def numbers_with(answer: int) -> tuple[int, int, int]:
    """`answer` and two other distinct numbers in [10, 99], ascending: every device of one
    session shows the number on the login page among its own distractors."""
    rng = secrets.SystemRandom()
    others = rng.sample([n for n in range(10, 100) if n != answer], 2)
    a, b, c = sorted((answer, *others))
    return a, b, c


def typed_code() -> str:
    """Six CSPRNG digits for a `code` push: ~20 bits, the least NIST SP 800-63B allows for a
    secret the user transfers."""
    return f"{secrets.randbelow(1_000_000):06d}"
