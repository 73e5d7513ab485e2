"""Standard Webhooks signatures (https://www.standardwebhooks.com/). Pure.

A secret is `whsec_` + standard padded Base64 of 24-64 random bytes; the signature of a message
is `v1,` + Base64 HMAC-SHA256, keyed with the secret's bytes, over `{id}.{timestamp}.{body}`.
A receiver accepts a message only if one of the space-separated signatures matches and the
timestamp is within its tolerance of its own clock (replays of an old message fail).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64
TOLERANCE_SECONDS = 5 * 60


class WebhookVerificationError(ValueError):
    """The message is not one the secret's owner sent, or not recently."""


def new_secret(size: int = SECRET_BYTES) -> str:
    if not MIN_SECRET_BYTES <= size <= MAX_SECRET_BYTES:
        raise ValueError(f"a secret has {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(size)).decode("ascii")


def secret_bytes(secret: str) -> bytes:
    """The key of a `whsec_...` secret; ValueError if it is not one."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is whsec_ followed by Base64") from exc
    if not key:
        raise ValueError("a webhook secret is whsec_ followed by Base64")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one attempt."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(
    secret: str,
    headers: dict[str, str],
    body: bytes,
    now_seconds: int,
    tolerance_seconds: int = TOLERANCE_SECONDS,
) -> None:
    """Raise WebhookVerificationError unless `headers` (names in lower case) sign `body`."""
    try:
        message_id = headers["webhook-id"]
        raw_timestamp = headers["webhook-timestamp"]
        signatures = headers["webhook-signature"]
    except KeyError as exc:
        raise WebhookVerificationError(f"missing header {exc.args[0]}") from None
    if not raw_timestamp.isascii() or not raw_timestamp.isdigit():
        raise WebhookVerificationError("webhook-timestamp is not Unix seconds")
    timestamp = int(raw_timestamp)
    if abs(now_seconds - timestamp) > tolerance_seconds:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    expected = sign(secret, message_id, timestamp, body).encode()
    for candidate in signatures.split():
        if hmac.compare_digest(candidate.encode(), expected):
            return
    raise WebhookVerificationError("no signature matches")
