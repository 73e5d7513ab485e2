"""Registrations and devices on SQLite (`devices/ports.py`)."""

from __future__ import annotations

from collections.abc import Sequence

from pushgate.accounts.model import User
from pushgate.devices.model import Device, DeviceStatus, DeviceUpdate, PendingRegistration
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.sealing import Sealer
from pushgate.store.sqlite.columns import Insert, Select
from pushgate.store.sqlite.connection import Db

ACTIVE = DeviceStatus.ACTIVE.value
INACTIVE = DeviceStatus.INACTIVE.value


class SqliteDevices:
    def __init__(self, db: Db, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    _ADD_REGISTRATION = Insert(t.registrations)

    async def add_registration(self, registration: PendingRegistration) -> None:
        params = self._ADD_REGISTRATION.params(rows.registration_values(registration, self._sealer))
        await self._db.write(lambda c: c.execute(self._ADD_REGISTRATION.sql, params))

    _GET_REGISTRATION = Select(
        "SELECT {r} FROM registrations r WHERE r.message_id = ? AND r.realm = ?",
        r=t.registrations,
    )

    async def get_registration(self, realm: str, message_id: str) -> PendingRegistration | None:
        found = await self._db.fetch(self._GET_REGISTRATION.sql, (message_id, realm))
        if not found:
            return None
        return rows.registration(self._GET_REGISTRATION.record(found[0]), self._sealer)

    _COMPLETE_REGISTRATION = (
        "UPDATE registrations SET completed_ms = ?1"
        " WHERE message_id = ?2 AND completed_ms IS NULL AND expires_ms > ?1"
    )

    async def complete_registration(self, message_id: str, now_ms: int) -> bool:
        params = (now_ms, message_id)
        return await self._db.write(
            lambda c: c.execute(self._COMPLETE_REGISTRATION, params).rowcount == 1
        )

    # A duplicate id or (realm, mechanism_uid) is ignored; a missing user or realm is not.
    _ADD = Insert(t.devices, suffix="ON CONFLICT DO NOTHING")

    async def add(self, device: Device) -> bool:
        params = self._ADD.params(rows.device_values(device, self._sealer))
        return await self._db.write(lambda c: c.execute(self._ADD.sql, params).rowcount == 1)

    _GET = Select(
        "SELECT {d}, {u} FROM devices d JOIN users u ON u.id = d.user_id"
        " WHERE d.realm = ? AND d.mechanism_uid = ?",
        d=t.devices,
        u=t.users,
    )

    async def get(self, realm: str, mechanism_uid: str) -> tuple[Device, User] | None:
        found = await self._db.fetch(self._GET.sql, (realm, mechanism_uid))
        if not found:
            return None
        device, user = self._GET.split(found[0])
        return rows.device(device, self._sealer), rows.user(user)

    _USER_AND_ACTIVE = Select(
        "SELECT {u}, {d} FROM users u"
        " LEFT JOIN devices d ON d.user_id = u.id AND d.status = ?"
        " WHERE u.realm = ? AND u.username = ? ORDER BY d.created_ms, d.id",
        u=t.users,
        d=t.devices,
    )

    async def user_and_active(
        self, realm: str, username: str
    ) -> tuple[User | None, Sequence[Device]]:
        found = await self._db.fetch(self._USER_AND_ACTIVE.sql, (ACTIVE, realm, username))
        if not found:
            return None, []
        parts = [self._USER_AND_ACTIVE.split(r) for r in found]
        devices = [rows.device(d, self._sealer) for _, d in parts if d["id"] is not None]
        return rows.user(parts[0][0]), devices

    _UPDATE = (
        "UPDATE devices SET push_token = ?, device_type = ?, communication_type = ?,"
        " name = COALESCE(?, name), updated_ms = ?,"
        " status = CASE status WHEN 'inactive' THEN 'active' ELSE status END WHERE id = ?"
    )

    async def update(self, device_id: str, update: DeviceUpdate, now_ms: int) -> None:
        params = (
            update.push_token,
            update.device_type,
            update.communication_type,
            update.name,
            now_ms,
            device_id,
        )
        await self._db.write(lambda c: c.execute(self._UPDATE, params))

    _MARK_INACTIVE = (
        "UPDATE devices SET status = ?, updated_ms = ?"
        " WHERE id = ? AND status = ? AND push_token = ? AND (? IS NULL OR updated_ms <= ?)"
    )

    async def mark_inactive(
        self, device_id: str, push_token: str, since_ms: int | None, now_ms: int
    ) -> bool:
        params = (INACTIVE, now_ms, device_id, ACTIVE, push_token, since_ms, since_ms)
        return await self._db.write(lambda c: c.execute(self._MARK_INACTIVE, params).rowcount == 1)

    _CONSUME_MESSAGE = (
        "INSERT INTO consumed_messages (digest, realm, created_ms) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING"
    )

    async def consume_message(self, digest: str, realm: str, now_ms: int) -> bool:
        params = (digest, realm, now_ms)
        return await self._db.write(
            lambda c: c.execute(self._CONSUME_MESSAGE, params).rowcount == 1
        )

    _OF_USER = Select(
        "SELECT {d} FROM devices d WHERE d.user_id = ? ORDER BY d.created_ms, d.id", d=t.devices
    )

    async def of_user(self, user_id: str) -> Sequence[Device]:
        found = await self._db.fetch(self._OF_USER.sql, (user_id,))
        return [rows.device(self._OF_USER.record(r), self._sealer) for r in found]

    _GET_BY_ID = Select(
        "SELECT {d}, {u} FROM devices d JOIN users u ON u.id = d.user_id"
        " WHERE d.realm = ? AND d.id = ?",
        d=t.devices,
        u=t.users,
    )

    async def get_by_id(self, realm: str, device_id: str) -> tuple[Device, User] | None:
        found = await self._db.fetch(self._GET_BY_ID.sql, (realm, device_id))
        if not found:
            return None
        device, user = self._GET_BY_ID.split(found[0])
        return rows.device(device, self._sealer), rows.user(user)

    _RENAME = "UPDATE devices SET name = ?, updated_ms = ? WHERE id = ?"

    async def rename(self, device_id: str, name: str, now_ms: int) -> bool:
        params = (name, now_ms, device_id)
        return await self._db.write(lambda c: c.execute(self._RENAME, params).rowcount == 1)

    async def set_status(
        self, device_id: str, status: DeviceStatus, allowed: Sequence[DeviceStatus], now_ms: int
    ) -> bool:
        if not allowed:
            return False
        marks = ", ".join("?" * len(allowed))
        query = (
            "UPDATE devices SET status = ?, updated_ms = ?"  # noqa: S608 - placeholders only
            f" WHERE id = ? AND status IN ({marks})"
        )
        params = (status.value, now_ms, device_id, *(a.value for a in allowed))
        return await self._db.write(lambda c: c.execute(query, params).rowcount == 1)

    # Not part of the port: what `SqliteStore.check_secret_key` opens.
    # The row written last (rowid order): no scan of every device ever registered.
    _NEWEST_DEVICE = Select("SELECT {d} FROM devices d ORDER BY d.rowid DESC LIMIT 1", d=t.devices)
    _NEWEST_REGISTRATION = Select(
        "SELECT {r} FROM registrations r ORDER BY r.rowid DESC LIMIT 1", r=t.registrations
    )

    async def open_newest_secret(self) -> None:
        """Open the newest device's secret, else the newest registration's, if any."""
        found = await self._db.fetch(self._NEWEST_DEVICE.sql)
        if found:
            rows.device(self._NEWEST_DEVICE.record(found[0]), self._sealer)
            return
        found = await self._db.fetch(self._NEWEST_REGISTRATION.sql)
        if found:
            rows.registration(self._NEWEST_REGISTRATION.record(found[0]), self._sealer)
