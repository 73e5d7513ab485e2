"""The unit of work's accounts, devices and audit, on SQLite and PostgreSQL alike
(`store/ports.py`): every area round-trips its models; uniqueness and compare-and-sets
refuse without breaking a transaction; a failed transaction writes nothing; realms do not
see each other.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from pushgate.accounts.model import ApiKey, Realm
from pushgate.audit.model import AuditEntry
from pushgate.devices.model import DeviceStatus, DeviceUpdate, PendingRegistration
from pushgate.store import schema
from pushgate.store.ports import Store
from tests.store.support import NOW, new_device, new_user, seed, table


async def test_round_trip_of_every_entity(store: Store) -> None:
    user, device, session, notification = await seed(store)
    key = ApiKey(str(uuid.uuid4()), "/", "h" * 64, NOW)
    registration = PendingRegistration(
        "REGISTER:abc", "/", user.id, str(uuid.uuid4()), b"r" * 32, b"k" * 32, NOW, NOW + 1
    )
    async with store.transaction() as tx:
        await tx.accounts.add_api_key(key)
        await tx.devices.add_registration(registration)
    async with store.autocommit() as db:
        assert await db.accounts.get_realm("/") == Realm("/", 0)
        assert await db.accounts.get_user("/", "alice") == user
        assert await db.accounts.find_api_key("h" * 64) == key
        assert await db.devices.get_registration("/", "REGISTER:abc") == registration
        assert await db.devices.get("/", "mech-1") == (device, user)
        assert await db.devices.user_and_active("/", "alice") == (user, [device])
        assert await db.sessions.get("/", session.id) == session
        found = await db.sessions.open_notification("/", notification.message_id)
        assert found is not None
        assert (found.notification, found.device, found.session) == (notification, device, session)
        assert await db.accounts.find_api_key("x" * 64) is None
        assert await db.sessions.open_notification("/", "AUTHENTICATE:none") is None


async def test_duplicates_are_refused_without_breaking_the_transaction(store: Store) -> None:
    user, _, _, _ = await seed(store)
    async with store.transaction() as tx:
        assert not await tx.accounts.add_realm(Realm("/", NOW))
        assert not await tx.accounts.add_user(new_user())  # same realm and username
        assert not await tx.devices.add(new_device(user, "mech-1"))
        assert await tx.devices.consume_message("d" * 64, "/", NOW)
        assert not await tx.devices.consume_message("d" * 64, "/", NOW)
        # Still usable after the refused inserts (PostgreSQL aborts on a raised violation).
        assert await tx.accounts.get_user("/", "alice") == user


async def test_a_failed_transaction_writes_nothing(store: Store, database_url: str) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with store.transaction() as tx:
            await tx.accounts.add_user(new_user())
            await tx.audit.append(AuditEntry("/", "test.event", "x", NOW))
            raise Boom
    async with store.autocommit() as db:
        assert await db.accounts.get_user("/", "alice") is None
    assert await table(database_url, schema.audit) == []


async def test_complete_registration_is_a_compare_and_set(store: Store) -> None:
    user = new_user()
    fresh = PendingRegistration("REGISTER:a", "/", user.id, "dev-a", b"r" * 32, b"k", NOW, NOW + 9)
    stale = dataclasses.replace(fresh, message_id="REGISTER:b", device_id="dev-b")
    async with store.transaction() as tx:
        await tx.accounts.add_user(user)
        await tx.devices.add_registration(fresh)
        await tx.devices.add_registration(stale)
    async with store.autocommit() as db:
        assert await db.devices.complete_registration("REGISTER:a", NOW + 1)
        assert not await db.devices.complete_registration("REGISTER:a", NOW + 2)
        assert not await db.devices.complete_registration("REGISTER:b", NOW + 9)  # expired
        done = await db.devices.get_registration("/", "REGISTER:a")
        assert await db.devices.get_registration("/alpha", "REGISTER:a") is None
    assert done is not None
    assert done.completed_ms == NOW + 1


async def test_user_and_active_devices_in_one_read(store: Store) -> None:
    user = new_user()
    lonely = new_user(name="bob")
    newer = new_device(user, "mech-new", created_ms=NOW + 5)
    older = new_device(user, "mech-old", created_ms=NOW)
    blocked = dataclasses.replace(new_device(user, "mech-x"), status=DeviceStatus.BLOCKED)
    async with store.transaction() as tx:
        await tx.accounts.add_user(user)
        await tx.accounts.add_user(lonely)
        for device in (newer, older, blocked):
            assert await tx.devices.add(device)
    async with store.autocommit() as db:
        assert await db.devices.user_and_active("/", "alice") == (user, [older, newer])
        assert await db.devices.user_and_active("/", "bob") == (lonely, [])
        assert await db.devices.user_and_active("/", "nobody") == (None, [])
        assert await db.devices.user_and_active("/alpha", "alice") == (None, [])


async def test_update_device_keeps_the_name_unless_given(store: Store) -> None:
    _, device, _, _ = await seed(store)
    async with store.autocommit() as db:
        await db.devices.update(device.id, DeviceUpdate("new-token", "ios", "apns"), NOW + 5)
        kept = await db.devices.get("/", "mech-1")
        await db.devices.update(device.id, DeviceUpdate("t2", "ios", "apns", "iPhone"), NOW + 6)
        renamed = await db.devices.get("/", "mech-1")
    assert kept is not None
    assert renamed is not None
    assert kept[0] == dataclasses.replace(
        device,
        push_token="new-token",
        device_type="ios",
        communication_type="apns",
        updated_ms=NOW + 5,
    )
    assert (renamed[0].name, renamed[0].push_token, renamed[0].updated_ms) == (
        "iPhone",
        "t2",
        NOW + 6,
    )


async def test_realms_do_not_see_each_other(store: Store) -> None:
    _, _, session, notification = await seed(store)
    async with store.autocommit() as db:
        assert await db.accounts.add_realm(Realm("/alpha", NOW))
        assert await db.accounts.get_realm("/alpha") == Realm("/alpha", NOW)
        assert await db.accounts.get_user("/alpha", "alice") is None
        assert await db.devices.get("/alpha", "mech-1") is None
        assert await db.sessions.get("/alpha", session.id) is None
        assert await db.sessions.open_notification("/alpha", notification.message_id) is None
        assert await db.sessions.pending_for_device("/alpha", "mech-1", NOW, 10) is None


async def test_audit_entries_are_appended(store: Store, database_url: str) -> None:
    async with store.autocommit() as db:
        await db.audit.append(AuditEntry("/", "test.event", "subject-1", NOW, {"b": 2, "a": 1}))
    found = await table(database_url, schema.audit)
    assert [(r["realm"], r["event"], r["subject"], r["at_ms"], r["data"]) for r in found] == [
        ("/", "test.event", "subject-1", NOW, '{"a":1,"b":2}')
    ]
