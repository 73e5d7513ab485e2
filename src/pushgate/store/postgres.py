"""The PostgreSQL adapter of the store port, on asyncpg directly (issue #3).

SQLAlchemy's async layer cost ~150 µs of CPU per statement and ~300 µs per transaction here,
more than the queries themselves, so the hot path speaks asyncpg: prepared statements cached
per connection, one round trip per statement. The schema and its migrations stay in
SQLAlchemy/Alembic (`schema.py`, `migrations/`); column lists are read from that metadata.

READ COMMITTED is enough: the compare-and-set UPDATEs re-check their WHERE clause against the
committed row, so exactly one terminal transition wins (security.md §7), and its NOTIFY is
delivered only if it commits.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager

import anyio
import asyncpg
from sqlalchemy.engine import make_url

from pushgate.accounts.model import ApiKey, Realm, User
from pushgate.devices.model import Device, DeviceStatus, PendingRegistration
from pushgate.errors import Unavailable
from pushgate.protocol.device_messages import DeviceDetails
from pushgate.sessions.model import Notification, PushSession, SessionStatus
from pushgate.store import pg_sql as q
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.listen import FINISHED_CHANNEL, NOTIFY_BATCH, listen_forever
from pushgate.store.ports import AuditEntry, OpenNotification
from pushgate.store.sealing import Sealer
from pushgate.store.sql import create_engine

_UNAVAILABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
)


def _json(data: Mapping[str, object]) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def _updated_one(status: str) -> bool:
    """asyncpg returns the command tag, e.g. 'UPDATE 1' or 'INSERT 0 1'."""
    return status.endswith(" 1")


async def _reset(conn: asyncpg.Connection) -> None:
    """Reset a connection going back to the pool only if a transaction was left open.

    asyncpg's default reset (RESET ALL, UNLISTEN *, ...) is a round trip on every release; our
    connections never change session state, so the only thing to undo is an interrupted
    transaction.
    """
    if conn.is_in_transaction():
        await conn.reset()


class PostgresStore:
    def __init__(self, url: str, sealer: Sealer, *, pool_size: int = 10) -> None:
        self._sealer = sealer
        # The SQLAlchemy engine serves migrations and administration; it connects only if used.
        self.engine = create_engine(url, pool_size=1)
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = anyio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._dsn, min_size=1, max_size=self._pool_size, reset=_reset
                    )
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTransaction]:
        try:
            pool = await self._get_pool()
            async with pool.acquire() as conn, conn.transaction():
                yield PostgresTransaction(conn, self._sealer)
        except _UNAVAILABLE as exc:
            raise Unavailable("storage is unavailable", reason=repr(exc)) from exc

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[PostgresTransaction]:
        try:
            pool = await self._get_pool()
            async with pool.acquire() as conn:
                yield PostgresTransaction(conn, self._sealer)
        except _UNAVAILABLE as exc:
            raise Unavailable("storage is unavailable", reason=repr(exc)) from exc

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await self.engine.dispose()

    async def watch_finished(self, publish: Callable[[str], None]) -> None:
        """Publish the ids of sessions other processes finish (LISTEN/NOTIFY); until cancelled."""
        await listen_forever(self.engine.url, FINISHED_CHANNEL, publish)


class PostgresTransaction:
    def __init__(self, conn: asyncpg.Connection, sealer: Sealer) -> None:
        self._conn = conn
        self._sealer = sealer

    # realms, users, keys -------------------------------------------------------------------

    async def add_realm(self, realm: Realm) -> bool:
        status = await self._conn.execute(
            q.insert(t.realms, ignore_duplicate=True), realm.name, realm.created_ms
        )
        return _updated_one(status)

    async def get_realm(self, name: str) -> Realm | None:
        row = await self._conn.fetchrow(q.GET_REALM, name)
        return rows.realm(row) if row else None

    async def add_user(self, user: User) -> bool:
        status = await self._conn.execute(
            q.insert(t.users, ignore_duplicate=True), *q.args(t.users, rows.user_values(user))
        )
        return _updated_one(status)

    async def get_user(self, realm: str, username: str) -> User | None:
        row = await self._conn.fetchrow(q.GET_USER, realm, username)
        return rows.user(row) if row else None

    async def add_api_key(self, key: ApiKey) -> None:
        await self._conn.execute(
            q.insert(t.api_keys), *q.args(t.api_keys, rows.api_key_values(key))
        )

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = await self._conn.fetchrow(q.FIND_API_KEY, key_hash)
        return rows.api_key(row) if row else None

    # registration and devices ----------------------------------------------------------------

    async def add_registration(self, registration: PendingRegistration) -> None:
        values = rows.registration_values(registration, self._sealer)
        await self._conn.execute(q.insert(t.registrations), *q.args(t.registrations, values))

    async def get_registration(self, realm: str, message_id: str) -> PendingRegistration | None:
        row = await self._conn.fetchrow(q.GET_REGISTRATION, message_id, realm)
        return rows.registration(row, self._sealer) if row else None

    async def complete_registration(self, message_id: str, now_ms: int) -> bool:
        return _updated_one(await self._conn.execute(q.COMPLETE_REGISTRATION, message_id, now_ms))

    async def add_device(self, device: Device) -> bool:
        status = await self._conn.execute(
            q.insert(t.devices, ignore_duplicate=True),
            *q.args(t.devices, rows.device_values(device, self._sealer)),
        )
        return _updated_one(status)

    async def get_device(self, realm: str, mechanism_uid: str) -> tuple[Device, User] | None:
        row = await self._conn.fetchrow(q.GET_DEVICE, realm, mechanism_uid)
        if row is None:
            return None
        device, user = q.split(row, t.devices, t.users)
        return rows.device(device, self._sealer), rows.user(user)

    async def active_devices(self, user_id: str) -> Sequence[Device]:
        found = await self._conn.fetch(q.ACTIVE_DEVICES, user_id, DeviceStatus.ACTIVE.value)
        return [rows.device(r, self._sealer) for r in found]

    async def user_and_devices(
        self, realm: str, username: str
    ) -> tuple[User | None, Sequence[Device]]:
        found = await self._conn.fetch(
            q.USER_AND_DEVICES, realm, username, DeviceStatus.ACTIVE.value
        )
        if not found:
            return None, []
        parts = [q.split(r, t.users, t.devices) for r in found]
        devices = [
            rows.device(device, self._sealer) for _, device in parts if device["id"] is not None
        ]
        return rows.user(parts[0][0]), devices

    async def update_device(self, device_id: str, details: DeviceDetails, now_ms: int) -> None:
        await self._conn.execute(
            q.UPDATE_DEVICE,
            device_id,
            details.device_id,
            details.device_type,
            details.communication_type,
            details.device_name,
            now_ms,
        )

    async def consume_message(self, digest: str, realm: str, now_ms: int) -> bool:
        status = await self._conn.execute(
            q.insert(t.consumed_messages, ignore_duplicate=True), digest, realm, now_ms
        )
        return _updated_one(status)

    # sessions and notifications -------------------------------------------------------------

    async def add_session(
        self,
        session: PushSession,
        notifications: Sequence[Notification],
        audit: AuditEntry,
    ) -> None:
        columns = [c.name for c in t.notifications.columns]
        values = [rows.notification_values(n) for n in notifications]
        await self._conn.execute(
            q.ADD_SESSION,
            *q.args(t.sessions, rows.session_values(session)),
            *([v[name] for v in values] for name in columns),
            audit.realm,
            audit.at_ms,
            audit.event,
            audit.subject,
            _json(audit.data),
        )

    async def get_session(self, realm: str, session_id: str) -> PushSession | None:
        row = await self._conn.fetchrow(q.GET_SESSION, session_id, realm)
        return rows.session(row) if row else None

    async def finish_session(
        self,
        session_id: str,
        status: SessionStatus,
        detail: str | None,
        now_ms: int,
        *,
        before_deadline: bool,
    ) -> bool:
        won = await self._conn.fetchrow(
            q.FINISH_SESSION, session_id, status.value, detail, now_ms, before_deadline
        )
        return won is not None

    async def get_open_notification(self, realm: str, message_id: str) -> OpenNotification | None:
        row = await self._conn.fetchrow(q.OPEN_NOTIFICATION, message_id, realm)
        if row is None:
            return None
        notification, device, session = q.split(row, t.notifications, t.devices, t.sessions)
        return OpenNotification(
            rows.notification(notification),
            rows.device(device, self._sealer),
            rows.session(session),
        )

    async def answer_notification(self, message_id: str, now_ms: int) -> bool:
        return _updated_one(await self._conn.execute(q.ANSWER_NOTIFICATION, message_id, now_ms))

    async def record_answer(
        self,
        message_id: str,
        session_id: str,
        status: SessionStatus,
        detail: str | None,
        now_ms: int,
        audit: AuditEntry,
    ) -> bool:
        won = await self._conn.fetchrow(
            q.RECORD_ANSWER,
            message_id,
            now_ms,
            session_id,
            status.value,
            detail,
            audit.event,
            _json(audit.data),
        )
        if won is not None and won["answered"] != 1:
            # Cannot happen while every answer goes through this statement; if it ever does,
            # say so loudly rather than report a half-recorded answer as won.
            raise RuntimeError(f"session {session_id} finished without its notification")
        return won is not None

    async def device_and_pending(
        self, realm: str, mechanism_uid: str, now_ms: int, limit: int
    ) -> tuple[Device, User, Sequence[tuple[Notification, PushSession]]] | None:
        found = await self._conn.fetch(q.DEVICE_AND_PENDING, realm, mechanism_uid, now_ms, limit)
        if not found:
            return None
        parts = [q.split(r, t.devices, t.users, t.notifications, t.sessions) for r in found]
        device, user, _, _ = parts[0]
        pending = [
            (rows.notification(n), rows.session(s))
            for _, _, n, s in parts
            if n["message_id"] is not None  # the LEFT JOIN found no open notification
        ]
        return rows.device(device, self._sealer), rows.user(user), pending

    async def expire_due(self, now_ms: int, limit: int) -> Sequence[tuple[str, str]]:
        found = await self._conn.fetch(q.EXPIRE_DUE, now_ms, SessionStatus.EXPIRED.value, limit)
        expired = [(r["id"], r["realm"]) for r in found]
        ids = [session_id for session_id, _ in expired]
        for start in range(0, len(ids), NOTIFY_BATCH):
            await self._conn.execute(q.NOTIFY, ",".join(ids[start : start + NOTIFY_BATCH]))
        return expired

    async def audit(
        self, realm: str, event: str, subject: str, data: Mapping[str, object], now_ms: int
    ) -> None:
        await self._conn.execute(q.insert(t.audit), realm, now_ms, event, subject, _json(data))
