"""Webhook verification on the receiving side, with signatures made by pushgate's signer and by
the Standard Webhooks reference library."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from pushgate.client import WebhookVerificationError, verify_webhook
from pushgate.webhooks.signing import new_secret, sign
from tests.client.test_session import TODAY

NOW = 1_790_000_000
BODY = json.dumps(
    {"type": "session.accepted", "timestamp": "2026-09-21T17:33:20.000Z", "data": TODAY}
).encode()


def headers(secret: str, *, timestamp: int = NOW, body: bytes = BODY) -> dict[str, str]:
    return {
        "Webhook-Id": "msg_1",
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": sign(secret, "msg_1", timestamp, body),
    }


def test_a_pushgate_signature_verifies() -> None:
    secret = new_secret()
    event = verify_webhook(secret, httpx.Headers(headers(secret)), BODY, now=NOW + 10)
    assert (event.type, event.data) == ("session.accepted", TODAY)
    assert event.session is not None
    assert event.session.id == TODAY["id"]
    assert verify_webhook(secret, headers(secret), BODY.decode(), now=NOW).type == event.type


def test_a_standard_webhooks_signature_verifies() -> None:
    secret = new_secret()
    signature = Webhook(secret).sign("msg_1", datetime.fromtimestamp(NOW, UTC), BODY.decode())
    sent = {"webhook-id": "msg_1", "webhook-timestamp": str(NOW), "webhook-signature": signature}
    assert verify_webhook(secret, sent, BODY, now=NOW).data == TODAY


def test_a_device_event_has_no_session() -> None:
    secret = new_secret()
    body = json.dumps({"type": "device.removed", "timestamp": "t", "data": {"id": "m"}}).encode()
    event = verify_webhook(secret, headers(secret, body=body), body, now=NOW)
    assert (event.type, event.session) == ("device.removed", None)


def test_forged_changed_and_old_messages_are_refused() -> None:
    secret = new_secret()
    good = headers(secret)
    cases = [
        (new_secret(), good, BODY, NOW),  # another secret
        (secret, good, BODY.replace(b"accepted", b"rejected"), NOW),  # the body changed
        (secret, {**good, "Webhook-Id": "msg_2"}, BODY, NOW),  # the id changed
        (secret, good, BODY, NOW + 301),  # too old
        (secret, good, BODY, NOW - 301),  # from the future
        (secret, {k: v for k, v in good.items() if k != "Webhook-Signature"}, BODY, NOW),
    ]
    for key, sent, body, now in cases:
        with pytest.raises(WebhookVerificationError):
            verify_webhook(key, sent, body, now=now)
    assert verify_webhook(secret, good, BODY, now=NOW + 301, tolerance=600).data == TODAY


def test_a_signed_body_that_is_no_event_is_refused() -> None:
    secret = new_secret()
    for body in (b"[]", b"not json", b'{"type": "x", "timestamp": "t"}'):
        with pytest.raises(WebhookVerificationError, match="not a webhook event"):
            verify_webhook(secret, headers(secret, body=body), body, now=NOW)
