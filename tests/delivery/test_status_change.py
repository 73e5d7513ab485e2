"""`mtoken.statusChange` (seed 004 "Registration Lifecycle"): a device whose registration changes
under it (removed; blocked once issue 10 adds it) gets a silent push with its `activationId`,
through the loopback providers. The app's own registration sends none."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from pushgate.changes import DeviceChange, follow
from pushgate.devices.model import Device, DeviceStatus
from pushgate.store import schema
from tests.api.helpers import Api, Phone, connect
from tests.delivery.conftest import Providers, register

KINDS = ["gcm", "apns", "webpush"]


async def _set_status(api: Api, phone: Phone, status: DeviceStatus) -> Device:
    async with connect(api.services) as conn:
        devices = schema.devices
        uid = phone.mechanism.mechanism_uid
        await conn.execute(
            update(devices).where(devices.c.mechanism_uid == uid).values(status=status.value)
        )
        await conn.commit()
    async with api.services.store.autocommit() as db:
        found = await db.devices.get("/", phone.mechanism.mechanism_uid)
    assert found is not None
    return found[0]


async def _change(api: Api, device: Device) -> int:
    """What the producer of a removal (issue 10) does: the change's rows in its commit."""
    now = api.now_ms()
    change = DeviceChange("device.removed", device, "alice", now)
    rows = follow(change, [api.services.pushes.follower])
    async with api.services.store.transaction() as tx:
        await tx.outbox.add(rows, now)
    return len(rows)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_removed_device_is_told_its_status_changed(
    api: Api, providers: Providers, kind: str
) -> None:
    await api.user("/", "alice")
    phone = await register(api, providers, kind)
    assert await api.services.outbox_worker.run_once() == 0  # its own registration: nothing
    device = await _set_status(api, phone, DeviceStatus.REMOVED)

    assert await _change(api, device) == 1
    assert await api.services.outbox_worker.run_once() == 1

    [push] = providers.pushes(kind)
    assert push["silent"] is True
    assert push["messageType"] == "mtoken.statusChange"
    assert push["activationId"] == phone.mechanism.mechanism_uid
    assert "message" not in push and "messageId" not in push
    # Handled: a second run sends nothing more (one push per change).
    assert await api.services.outbox_worker.run_once() == 0
    assert len(providers.pushes(kind)) == 1


async def test_a_device_whose_token_died_is_not_sent_to(api: Api, providers: Providers) -> None:
    await api.user("/", "alice")
    phone = await register(api, providers, "gcm")
    device = await _set_status(api, phone, DeviceStatus.INACTIVE)
    await _change(api, device)
    await api.services.outbox_worker.run_once()
    assert providers.pushes("gcm") == []


async def test_a_status_push_is_not_sent_after_it_lost_its_point(
    api: Api, providers: Providers
) -> None:
    await api.user("/", "alice")
    phone = await register(api, providers, "apns")
    device = await _set_status(api, phone, DeviceStatus.BLOCKED)
    await _change(api, device)
    api.advance(61 * 60)  # past the hour a status change is worth delivering
    await api.services.outbox_worker.run_once()
    assert providers.pushes("apns") == []
