"""DeviceService.rename/block/unblock/remove and re-registration (issue 10 "Administration"),
on both stores: audited, refused for another user's or an unknown device, and a removed or
blocked device is no longer notified nor able to answer."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from pushgate.devices.model import DeviceStatus
from pushgate.errors import InvalidRequest, NotFound
from pushgate.services import Services
from pushgate.simulator import new_device
from pushgate.store import schema
from tests.api.helpers import REFUSED, Api, connect


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


async def _device_id(api: Api, mechanism_uid: str) -> str:
    return str((await api.device_row(mechanism_uid))["id"])


async def test_rename_is_stored_and_audited(api: Api) -> None:
    await api.user("/", "alice")
    phone = await api.register("/", "alice")
    device_id = await _device_id(api, phone.mechanism.mechanism_uid)

    renamed = await api.services.devices.rename("/", "alice", device_id, "Work phone")

    assert renamed.name == "Work phone"
    [listed] = await api.services.devices.list_for_user("/", "alice")
    assert listed.name == "Work phone"
    assert "device.renamed" in await api.audit_events(device_id)


@pytest.mark.parametrize("name", ["", " padded", "tab\there", "x" * 257, "bad\ud800"])
async def test_a_bad_name_is_refused_and_nothing_changes(api: Api, name: str) -> None:
    await api.user("/", "alice")
    phone = await api.register("/", "alice")
    device_id = await _device_id(api, phone.mechanism.mechanism_uid)
    before = await api.snapshot()
    with pytest.raises(InvalidRequest):
        await api.services.devices.rename("/", "alice", device_id, name)
    assert await api.snapshot() == before


async def test_another_users_or_an_unknown_device_is_not_found(api: Api) -> None:
    await api.user("/", "alice")
    await api.user("/", "mallory")
    phone = await api.register("/", "alice")
    device_id = await _device_id(api, phone.mechanism.mechanism_uid)
    devices = api.services.devices
    before = await api.snapshot()
    for call in (
        devices.rename("/", "mallory", device_id, "mine now"),
        devices.remove("/", "mallory", device_id),
        devices.block("/", "mallory", device_id),
        devices.remove("/", "alice", "00000000-0000-0000-0000-000000000000"),
        devices.remove("/", "alice", "x" * 10_000),
        devices.list_for_user("/", "nobody"),
    ):
        with pytest.raises(NotFound):
            await call
    assert await api.snapshot() == before


async def test_a_removed_device_is_gone_for_good(api: Api) -> None:
    await api.user("/", "alice")
    phone = await api.register("/", "alice")
    device_id = await _device_id(api, phone.mechanism.mechanism_uid)

    removed = await api.services.devices.remove("/", "alice", device_id, actor="cli")

    assert removed.status is DeviceStatus.REMOVED
    assert await api.services.devices.list_for_user("/", "alice") == []
    assert (await api.device_row(phone.mechanism.mechanism_uid))["status"] == "removed"
    assert "device.removed" in await api.audit_events(device_id)
    response = await api.poll(phone)
    assert response.status_code == 400 and response.json() == REFUSED
    # Nothing left to notify: a session for alice has no device.
    key = await api.key()
    created = await api.create_session(key, "alice")
    assert created["status"] == "error"
    with pytest.raises(NotFound):
        await api.services.devices.remove("/", "alice", device_id)
    with pytest.raises(NotFound):
        await api.services.devices.unblock("/", "alice", device_id)


async def test_block_then_unblock(api: Api) -> None:
    await api.user("/", "alice")
    phone = await api.register("/", "alice")
    device_id = await _device_id(api, phone.mechanism.mechanism_uid)
    devices = api.services.devices

    assert (await devices.block("/", "alice", device_id)).status is DeviceStatus.BLOCKED
    assert (await devices.block("/", "alice", device_id)).status is DeviceStatus.BLOCKED
    assert (await api.poll(phone)).status_code == 400
    assert await api.audit_events(device_id) == ["device.registered", "device.blocked"]

    assert (await devices.unblock("/", "alice", device_id)).status is DeviceStatus.ACTIVE
    assert (await api.poll(phone)).status_code == 200
    [listed] = await devices.list_for_user("/", "alice")
    assert listed.status is DeviceStatus.ACTIVE


async def test_registering_the_same_phone_again_retires_the_old_registration(api: Api) -> None:
    await api.user("/", "alice")
    phone = new_device(device_id="same-push-token")
    first = await api.register("/", "alice", device=phone)
    other = await api.register("/", "alice")  # another phone: kept
    second = await api.register("/", "alice", device=phone)

    listed = await api.services.devices.list_for_user("/", "alice")
    uids = {d.mechanism_uid for d in listed}
    assert uids == {other.mechanism.mechanism_uid, second.mechanism.mechanism_uid}
    old = await api.device_row(first.mechanism.mechanism_uid)
    assert old["status"] == "removed"
    assert "device.removed" in await api.audit_events(str(old["id"]))
    new_id = (await api.device_row(second.mechanism.mechanism_uid))["id"]
    async with connect(api.services) as conn:
        actor = await conn.scalar(
            select(schema.audit.c.actor).where(
                schema.audit.c.subject == old["id"], schema.audit.c.event == "device.removed"
            )
        )
    assert actor == f"device:{new_id}"  # the registration that replaced it
    assert (await api.poll(first)).status_code == 400


async def test_another_users_phone_with_that_token_is_not_touched(api: Api) -> None:
    await api.user("/", "alice")
    await api.user("/", "bob")
    phone = new_device(device_id="shared-token")
    alices = await api.register("/", "alice", device=phone)
    await api.register("/", "bob", device=phone)
    assert (await api.device_row(alices.mechanism.mechanism_uid))["status"] == "active"
