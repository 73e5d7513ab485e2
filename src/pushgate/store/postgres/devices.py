"""Registrations, devices and single-use message digests on PostgreSQL (`devices/ports.py`)."""

from __future__ import annotations

from collections.abc import Sequence

from pushgate.accounts.model import User
from pushgate.devices.model import Device, DeviceStatus, DeviceUpdate, PendingRegistration
from pushgate.devices.ports import Devices
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.postgres import sql
from pushgate.store.postgres.sql import Db, args, columns, insert, split, updated_one
from pushgate.store.sealing import Sealer

ACTIVE = DeviceStatus.ACTIVE.value
INACTIVE = DeviceStatus.INACTIVE.value

ADD_REGISTRATION = insert(t.registrations)
GET_REGISTRATION = "SELECT * FROM registrations WHERE message_id = $1 AND realm = $2"
COMPLETE_REGISTRATION = (
    "UPDATE registrations SET completed_ms = $2"
    " WHERE message_id = $1 AND completed_ms IS NULL AND expires_ms > $2"
)
ADD_DEVICE = insert(t.devices, ignore_duplicate=True)
GET_DEVICE = (
    f"SELECT {columns(t.devices, 'd')}, {columns(t.users, 'u')}"
    " FROM devices d JOIN users u ON u.id = d.user_id"
    " WHERE d.realm = $1 AND d.mechanism_uid = $2"
)
USER_AND_ACTIVE = (
    f"SELECT {columns(t.users, 'u')}, {columns(t.devices, 'd')}"
    f" FROM users u LEFT JOIN devices d ON d.user_id = u.id AND d.status = '{ACTIVE}'"
    " WHERE u.realm = $1 AND u.username = $2 ORDER BY d.created_ms, d.id"
)
UPDATE = (
    "UPDATE devices SET push_token = $2, device_type = $3, communication_type = $4,"
    " name = COALESCE($5, name), updated_ms = $6,"
    f" status = CASE status WHEN '{INACTIVE}' THEN '{ACTIVE}' ELSE status END WHERE id = $1"
)
# A token refreshed after the provider's verdict (APNs 410 `timestamp`) is kept.
MARK_INACTIVE = (
    f"UPDATE devices SET status = '{INACTIVE}', updated_ms = $4"
    f" WHERE id = $1 AND status = '{ACTIVE}' AND push_token = $2"
    " AND ($3::bigint IS NULL OR updated_ms <= $3::bigint)"
)
CONSUME_MESSAGE = insert(t.consumed_messages, ignore_duplicate=True)
OF_USER = "SELECT * FROM devices WHERE user_id = $1 ORDER BY created_ms, id"
GET_BY_ID = (
    f"SELECT {columns(t.devices, 'd')}, {columns(t.users, 'u')}"
    " FROM devices d JOIN users u ON u.id = d.user_id WHERE d.realm = $1 AND d.id = $2"
)
RENAME = "UPDATE devices SET name = $2, updated_ms = $3 WHERE id = $1"
SET_STATUS = (
    "UPDATE devices SET status = $2, updated_ms = $3 WHERE id = $1 AND status = ANY($4::text[])"
)


class PostgresDevices(Devices):
    def __init__(self, db: Db, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    async def add_registration(self, registration: PendingRegistration) -> None:
        values = rows.registration_values(registration, self._sealer)
        await self._db.execute(ADD_REGISTRATION, *args(t.registrations, values))

    async def get_registration(self, realm: str, message_id: str) -> PendingRegistration | None:
        row = await self._db.fetchrow(GET_REGISTRATION, message_id, realm)
        return sql.registration(row, self._sealer) if row else None

    async def complete_registration(self, message_id: str, now_ms: int) -> bool:
        return updated_one(await self._db.execute(COMPLETE_REGISTRATION, message_id, now_ms))

    async def add(self, device: Device) -> bool:
        values = rows.device_values(device, self._sealer)
        return updated_one(await self._db.execute(ADD_DEVICE, *args(t.devices, values)))

    async def get(self, realm: str, mechanism_uid: str) -> tuple[Device, User] | None:
        row = await self._db.fetchrow(GET_DEVICE, realm, mechanism_uid)
        if row is None:
            return None
        device, user = split(row, t.devices, t.users)
        return sql.device(device, self._sealer), rows.user(user)

    async def user_and_active(
        self, realm: str, username: str
    ) -> tuple[User | None, Sequence[Device]]:
        found = await self._db.fetch(USER_AND_ACTIVE, realm, username)
        if not found:
            return None, []
        parts = [split(row, t.users, t.devices) for row in found]
        devices = [
            sql.device(device, self._sealer) for _, device in parts if device["id"] is not None
        ]
        return rows.user(parts[0][0]), devices

    async def update(self, device_id: str, update: DeviceUpdate, now_ms: int) -> None:
        await self._db.execute(
            UPDATE,
            device_id,
            update.push_token,
            update.device_type,
            update.communication_type,
            update.name,
            now_ms,
        )

    async def mark_inactive(
        self, device_id: str, push_token: str, since_ms: int | None, now_ms: int
    ) -> bool:
        return updated_one(
            await self._db.execute(MARK_INACTIVE, device_id, push_token, since_ms, now_ms)
        )

    async def consume_message(self, digest: str, realm: str, now_ms: int) -> bool:
        return updated_one(await self._db.execute(CONSUME_MESSAGE, digest, realm, now_ms))

    async def of_user(self, user_id: str) -> Sequence[Device]:
        found = await self._db.fetch(OF_USER, user_id)
        return [sql.device(row, self._sealer) for row in found]

    async def get_by_id(self, realm: str, device_id: str) -> tuple[Device, User] | None:
        row = await self._db.fetchrow(GET_BY_ID, realm, device_id)
        if row is None:
            return None
        device, user = split(row, t.devices, t.users)
        return sql.device(device, self._sealer), rows.user(user)

    async def rename(self, device_id: str, name: str, now_ms: int) -> bool:
        return updated_one(await self._db.execute(RENAME, device_id, name, now_ms))

    async def set_status(
        self, device_id: str, status: DeviceStatus, allowed: Sequence[DeviceStatus], now_ms: int
    ) -> bool:
        values = [a.value for a in allowed]
        return updated_one(
            await self._db.execute(SET_STATUS, device_id, status.value, now_ms, values)
        )
