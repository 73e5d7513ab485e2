"""Sessions pushed end to end (issue 8 "Reliable delivery"): simulator devices registered with
`gcm`, `apns` and `webpush` get the push JWT through the loopback providers and approve with it;
the outbox worker is run directly on the tests' clock."""

from __future__ import annotations

import pytest

from pushgate.simulator import decode_notification
from tests.api.helpers import Api
from tests.delivery.conftest import Providers, register

KINDS = ["gcm", "apns", "webpush"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_device_approves_with_the_jwt_its_provider_delivered(
    api: Api, providers: Providers, kind: str
) -> None:
    await api.user("/", "alice")
    key = await api.key()
    phone = await register(api, providers, kind)
    session = await api.create_session(key, "alice", notification={"title": "Sign in"})

    assert await api.services.outbox_worker.run_once() == 1

    [push] = providers.pushes(kind)
    assert push["silent"] is False
    assert push["messageType"] == "mtoken.operationInit"
    assert push["operationId"] == session["id"]
    assert push["operationName"] == "login"
    assert push["activationId"] == phone.mechanism.mechanism_uid
    # The same JWT the polling `pending` action gives: the same claims, signed the same way.
    [polled] = await api.pending(phone)
    assert (push["messageId"], push["message"]) == (polled.message_id, polled.jwt)
    notification = decode_notification(
        phone.mechanism, push["messageId"], push["message"], api.now_ms()
    )
    response = await api.answer(phone, notification)
    assert response.status_code == 200, response.text
    assert await api.status(key, session["id"]) == "accepted"


async def test_pushes_expire_at_the_session_deadline(api: Api, providers: Providers) -> None:
    """security.md D3: the provider drops a push the session no longer wants."""
    await api.user("/", "alice")
    key = await api.key()
    for kind in KINDS:
        await register(api, providers, kind, name=f"{kind}-phone")
    session = await api.create_session(key, "alice", secondsToExpire=120)
    deadline_s = (api.now_ms() + 120_000) // 1000

    assert await api.services.outbox_worker.run_once() == 3

    [apns] = providers.pushes("apns")
    assert apns["headers"]["apns-expiration"] == str(deadline_s)
    assert apns["headers"]["apns-collapse-id"] == session["id"]
    [fcm] = providers.pushes("gcm")
    assert fcm["android"]["ttl"] == "120s"
    [web] = providers.pushes("webpush")
    assert web["headers"]["ttl"] == "120"
    assert session["notificationCount"] == 3
