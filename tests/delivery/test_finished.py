"""A session that ends clears its prompt on the user's other devices: a silent
`mtoken.operationFinished` (seed 004) to each active device except the one that answered."""

from __future__ import annotations

import pytest

from pushgate.simulator import decode_notification
from tests.api.helpers import Api, Phone
from tests.delivery.conftest import Providers, register

KINDS = ("gcm", "apns", "webpush")


async def _three_phones(api: Api, providers: Providers) -> tuple[str, dict[str, Phone]]:
    await api.user("/", "alice")
    key = await api.key()
    phones = {kind: await register(api, providers, kind, name=f"{kind}-phone") for kind in KINDS}
    return key, phones


async def _drain(api: Api) -> None:
    while await api.services.outbox_worker.run_once():
        pass


def _silent(providers: Providers, kind: str) -> list[dict[str, object]]:
    return [push for push in providers.pushes(kind) if push["silent"]]


@pytest.mark.parametrize(
    ("approve", "result"), [(True, "authentication.success"), (False, "authentication.fail")]
)
async def test_the_other_devices_hear_the_answer(
    api: Api, providers: Providers, approve: bool, result: str
) -> None:
    key, phones = await _three_phones(api, providers)
    session = await api.create_session(key, "alice")
    await _drain(api)
    [prompt] = providers.pushes("gcm")
    phone = phones["gcm"]
    push = decode_notification(
        phone.mechanism, prompt["messageId"], prompt["message"], api.now_ms()
    )
    assert (await api.answer(phone, push, approve=approve)).status_code == 200

    await _drain(api)

    assert _silent(providers, "gcm") == []  # the device that answered knows
    for kind in ("apns", "webpush"):
        [finished] = _silent(providers, kind)
        assert finished["messageType"] == "mtoken.operationFinished"
        assert finished["mtokenOperationResult"] == result
        assert finished["operationId"] == session["id"]
        assert finished["activationId"] == phones[kind].mechanism.mechanism_uid
        assert "message" not in finished  # no JWT: nothing to show
    [apns] = _silent(providers, "apns")
    assert apns["aps"] == {"content-available": 1}
    assert apns["headers"]["apns-push-type"] == "background"
    assert apns["headers"]["apns-priority"] == "5"
    # The same collapse id as the prompt: where APNs still holds the prompt, this replaces it.
    assert apns["headers"]["apns-collapse-id"] == session["id"]


async def test_after_a_cancel_every_device_hears_it(api: Api, providers: Providers) -> None:
    key, _ = await _three_phones(api, providers)
    session = await api.create_session(key, "alice")
    await _drain(api)
    assert (await api.cancel(key, session["id"])).status_code == 200

    await _drain(api)

    for kind in KINDS:
        [finished] = _silent(providers, kind)
        assert finished["mtokenOperationResult"] == "operation.canceled"


async def test_after_an_expiry_every_device_hears_it(api: Api, providers: Providers) -> None:
    key, _ = await _three_phones(api, providers)
    await api.create_session(key, "alice", secondsToExpire=30)
    await _drain(api)
    api.advance(30)
    assert await api.services.sessions.expire_due() == 1

    await _drain(api)

    for kind in KINDS:
        [finished] = _silent(providers, kind)
        assert finished["mtokenOperationResult"] == "operation.timeout"
    [fcm] = _silent(providers, "gcm")
    assert fcm["android"] == {
        "priority": "NORMAL",
        "ttl": "300s",  # past the deadline, a finished push still clears the tray for a while
        "collapse_key": fcm["operationId"],
    }


async def test_a_session_that_reached_one_device_which_answered_writes_no_finished_push(
    api: Api, providers: Providers
) -> None:
    """Nobody else has the prompt, so there is nothing to take away (and nothing to read)."""
    await api.user("/", "alice")
    key = await api.key()
    phone = await register(api, providers, "gcm")
    session = await api.create_session(key, "alice")
    assert await api.services.outbox_worker.run_once() == 1  # the prompt
    notification = await api.push(phone)
    assert (await api.answer(phone, notification)).status_code == 200
    assert await api.count("outbox", kind="push.finished") == 0
    # A second device registered after the create never saw the prompt: it is not told.
    await register(api, providers, "apns", name="later")
    assert await api.services.outbox_worker.run_once() == 0
    assert [p for p in providers.pushes("gcm") if p["silent"]] == []
    assert await api.status(key, session["id"]) == "accepted"
