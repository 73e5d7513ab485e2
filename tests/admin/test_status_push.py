"""An operator's block or removal, and a phone registering again, tell the app through its
real provider (`mtoken.statusChange`, seed 004 "Registration Lifecycle"): the loopback APNs,
FCM and Web Push servers of tests/delivery."""

# The delivery tests' fixtures are imported here, so their names come back as parameters.
# ruff: noqa: F811

from __future__ import annotations

import pytest

from tests.api.helpers import Api
from tests.delivery.conftest import (  # noqa: F401 - fixtures
    Providers,
    api,
    apns_key,
    apns_key_file,
    apns_server,
    fcm_key,
    fcm_server,
    pki,
    providers,
    push_service,
    push_settings,
    register,
    services,
    vapid,
)

STATUS = "mtoken.statusChange"


async def _device_id(api: Api, mechanism_uid: str) -> str:
    return str((await api.device_row(mechanism_uid))["id"])


@pytest.mark.parametrize("change", ["remove", "block"])
async def test_a_block_or_a_removal_tells_the_app(
    api: Api, providers: Providers, change: str
) -> None:
    await api.user("/", "alice")
    phone = await register(api, providers, "gcm")
    assert await api.services.outbox_worker.run_once() == 0
    device_id = await _device_id(api, phone.mechanism.mechanism_uid)
    devices = api.services.devices

    await (devices.remove if change == "remove" else devices.block)("/", "alice", device_id)
    assert await api.services.outbox_worker.run_once() == 1

    [push] = providers.pushes("gcm")
    assert push["messageType"] == STATUS
    assert push["activationId"] == phone.mechanism.mechanism_uid
    # A second block changes nothing and sends nothing.
    if change == "block":
        await devices.block("/", "alice", device_id)
        assert await api.services.outbox_worker.run_once() == 0


async def test_a_rename_sends_nothing(api: Api, providers: Providers) -> None:
    await api.user("/", "alice")
    phone = await register(api, providers, "apns")
    device_id = await _device_id(api, phone.mechanism.mechanism_uid)
    await api.services.devices.rename("/", "alice", device_id, "iPhone")
    assert await api.services.outbox_worker.run_once() == 0
    assert providers.pushes("apns") == []


async def test_registering_again_retires_the_old_registration_and_says_so(
    api: Api, providers: Providers
) -> None:
    await api.user("/", "alice")
    device = providers.device("webpush", "browser")
    old = await api.register("/", "alice", device=device)
    await api.register("/", "alice", device=device)
    assert await api.services.outbox_worker.run_once() == 1

    [push] = providers.pushes("webpush")
    assert push["messageType"] == STATUS
    assert push["activationId"] == old.mechanism.mechanism_uid
    [listed] = await api.services.devices.list_for_user("/", "alice")
    assert listed.mechanism_uid != old.mechanism.mechanism_uid
