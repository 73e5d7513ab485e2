"""What each provider answer does to a push (issue 8; docs/PUSH.md "Delivery"): a dead token,
Retry-After, a 5xx, a refusal, the deadline. The worker runs on the tests' clock."""

from __future__ import annotations

import dataclasses

import pytest

from pushgate.journeys import effects as fx
from pushgate.simulator import refresh_body
from tests.api.helpers import Api
from tests.delivery.conftest import Providers, register
from tests.transports.apns_server import Answer
from tests.transports.fcm_server import FcmAnswer


def _kill_token(providers: Providers, kind: str, name: str, now_ms: int) -> None:
    if kind == "apns":
        providers.apns.script.append(Answer(410, "Unregistered", timestamp_ms=now_ms))
    elif kind == "gcm":
        providers.fcm.script.append(FcmAnswer(404, "UNREGISTERED"))
    else:
        providers.webpush.answers[name] = (410, {})


async def _session_count(api: Api, key: str, session_id: str) -> int:
    response = await api.get_session(key, session_id)
    count: int = response.json()["notificationCount"]
    return count


@pytest.mark.parametrize("kind", ["apns", "gcm", "webpush"])
async def test_a_dead_token_makes_the_device_inactive_until_it_refreshes(
    api: Api, providers: Providers, kind: str
) -> None:
    await api.user("/", "alice")
    await api.allow_many_sessions()
    key = await api.key()
    other = "gcm" if kind != "gcm" else "apns"
    dead = await register(api, providers, kind, name="dead")
    await register(api, providers, other, name="other")
    first = await api.create_session(key, "alice")
    assert first["notificationCount"] == 2
    _kill_token(providers, kind, "dead", api.now_ms())

    assert await api.services.outbox_worker.run_once() == 2

    assert (await api.device_row(dead.mechanism.mechanism_uid))["status"] == "inactive"
    assert await _session_count(api, key, first["id"]) == 1  # only pushes that can arrive
    # Later sessions neither notify nor count it.
    second = await api.create_session(key, "alice")
    assert second["notificationCount"] == 1
    assert await api.services.outbox_worker.run_once() == 1
    assert len(providers.pushes(kind)) == 1
    assert len(providers.pushes(other)) == 2

    # A refresh (a new token from the app) brings it back.
    response = await api.post(dead.refresh_url, refresh_body(dead.mechanism, dead.device))
    assert response.status_code == 200, response.text
    assert (await api.device_row(dead.mechanism.mechanism_uid))["status"] == "active"
    third = await api.create_session(key, "alice")
    assert third["notificationCount"] == 2


async def test_a_device_refreshed_after_the_providers_verdict_stays_active(
    api: Api, providers: Providers
) -> None:
    await api.user("/", "alice")
    key = await api.key()
    phone = await register(api, providers, "apns")
    await api.create_session(key, "alice")
    api.advance(10)
    renamed = dataclasses.replace(phone.device, device_name="Alice's iPhone")
    response = await api.post(phone.refresh_url, refresh_body(phone.mechanism, renamed))
    assert response.status_code == 200, response.text
    # APNs says the token was dead since before the app re-registered it (spec §1, 410).
    providers.apns.script.append(Answer(410, "Unregistered", timestamp_ms=api.now_ms() - 5_000))

    assert await api.services.outbox_worker.run_once() == 1

    assert (await api.device_row(phone.mechanism.mechanism_uid))["status"] == "active"
    assert len(providers.pushes("apns")) == 1


async def test_retry_after_is_honoured(api: Api, providers: Providers) -> None:
    await api.user("/", "alice")
    key = await api.key()
    await register(api, providers, "gcm")
    session = await api.create_session(key, "alice")
    providers.fcm.script.append(FcmAnswer(429, "QUOTA_EXCEEDED", retry_after="7"))

    assert await api.services.outbox_worker.run_once() == 1
    api.advance(6.5)
    assert await api.services.outbox_worker.run_once() == 0  # not before the provider said
    api.advance(1)
    assert await api.services.outbox_worker.run_once() == 1

    first, second = providers.pushes("gcm")
    assert first["messageId"] == second["messageId"]
    assert first["message"] == second["message"]
    assert await _session_count(api, key, session["id"]) == 1


async def test_a_5xx_is_retried_within_five_seconds_as_the_same_push(
    api: Api, providers: Providers
) -> None:
    await api.user("/", "alice")
    key = await api.key()
    await register(api, providers, "apns")
    session = await api.create_session(key, "alice")
    providers.apns.script.append(Answer(503, "ServiceUnavailable"))

    assert await api.services.outbox_worker.run_once() == 1
    api.advance(5)
    assert await api.services.outbox_worker.run_once() == 1

    first, second = providers.pushes("apns")
    assert first["headers"]["apns-id"] == second["headers"]["apns-id"]
    assert first["messageId"] == second["messageId"]
    assert await api.count("outbox", kind="push", state="done") == 1
    assert await _session_count(api, key, session["id"]) == 1


async def test_a_refused_push_is_not_retried_and_not_counted(
    api: Api, providers: Providers
) -> None:
    await api.user("/", "alice")
    key = await api.key()
    phone = await register(api, providers, "apns")
    session = await api.create_session(key, "alice")
    providers.apns.script.append(Answer(400, "BadTopic"))

    assert await api.services.outbox_worker.run_once() == 1
    api.advance(600)
    assert await api.services.outbox_worker.run_once() == 0

    assert len(providers.pushes("apns")) == 1
    assert await api.count("outbox", kind="push", state="dead") == 1
    # Its one push failed for good: nobody can answer, so the session ends now, not at its
    # deadline (PingAM's TRANSMISSION_FAILURE).
    ended = (await api.get_session(key, session["id"])).json()
    assert (ended["status"], ended["notificationCount"]) == ("error", 0)
    assert ended["detail"] == "no push could be delivered"
    assert await api.pending(phone) == []
    # A journey waiting on it learns why (its verifier says TRANSMISSION_FAILURE).
    read = await api.services.journeys.perform("/", fx.ReadPushSession(session["id"]))
    assert read == fx.PushRead(fx.PushState.UNDELIVERED)
    # Only this push failed: the device stays, and its next session reaches it.
    assert (await api.device_row(phone.mechanism.mechanism_uid))["status"] == "active"
    assert (await api.create_session(key, "alice"))["notificationCount"] == 1


@pytest.mark.parametrize("kind", ["apns", "gcm", "webpush"])
async def test_a_session_whose_every_push_failed_ends_at_once(
    api: Api, providers: Providers, kind: str
) -> None:
    await api.user("/", "alice")
    await api.allow_many_sessions()
    key = await api.key()
    await register(api, providers, kind, name="dead")
    await register(api, providers, "apns" if kind != "apns" else "gcm", name="alive")
    session = await api.create_session(key, "alice")
    _kill_token(providers, kind, "dead", api.now_ms())

    assert await api.services.outbox_worker.run_once() == 2
    # One push still counts: the session waits for its answer.
    still = (await api.get_session(key, session["id"])).json()
    assert (still["status"], still["notificationCount"]) == ("sent", 1)

    later = await api.create_session(key, "alice")  # reaches the live device only
    if kind == "apns":
        providers.fcm.script.append(FcmAnswer(404, "UNREGISTERED"))
    else:
        providers.apns.script.append(Answer(410, "Unregistered", timestamp_ms=api.now_ms()))
    assert await api.services.outbox_worker.run_once() >= 1
    ended = (await api.get_session(key, later["id"])).json()
    assert (ended["status"], ended["detail"]) == ("error", "no push could be delivered")


async def test_nothing_is_sent_after_the_deadline(api: Api, providers: Providers) -> None:
    await api.user("/", "alice")
    key = await api.key()
    await register(api, providers, "gcm")
    await api.create_session(key, "alice", secondsToExpire=10)
    api.advance(10)

    assert await api.services.outbox_worker.run_once() == 1

    assert providers.pushes("gcm") == []
    assert await api.count("outbox", kind="push", state="done") == 1


async def test_a_retry_that_would_come_after_the_deadline_is_not_made(
    api: Api, providers: Providers
) -> None:
    await api.user("/", "alice")
    key = await api.key()
    await register(api, providers, "gcm")
    session = await api.create_session(key, "alice", secondsToExpire=10)
    providers.fcm.script.append(FcmAnswer(503, "UNAVAILABLE", retry_after="30"))

    assert await api.services.outbox_worker.run_once() == 1
    api.advance(60)
    assert await api.services.outbox_worker.run_once() == 0

    assert len(providers.pushes("gcm")) == 1
    assert await _session_count(api, key, session["id"]) == 0


async def test_a_prompt_is_not_sent_once_its_session_ended(api: Api, providers: Providers) -> None:
    await api.user("/", "alice")
    key = await api.key()
    await register(api, providers, "gcm")
    session = await api.create_session(key, "alice")
    assert (await api.cancel(key, session["id"])).status_code == 200

    await api.services.outbox_worker.run_once()
    await api.services.outbox_worker.run_once()

    # Only the silent push that says the operation was canceled.
    [push] = providers.pushes("gcm")
    assert push["silent"] is True
    assert push["mtokenOperationResult"] == "operation.canceled"


async def test_a_device_without_a_configured_transport_is_left_to_polling(
    api: Api, providers: Providers
) -> None:
    await api.user("/", "alice")
    key = await api.key()
    phone = await api.register(
        "/", "alice", device=dataclasses.replace(providers.device("gcm"), communication_type="poll")
    )
    session = await api.create_session(key, "alice")

    assert await api.count("outbox", kind="push") == 0
    assert session["notificationCount"] == 1  # polling reaches it
    assert len(await api.pending(phone)) == 1
