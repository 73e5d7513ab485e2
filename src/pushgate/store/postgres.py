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
from typing import Any

import anyio
import asyncpg
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from pushgate.accounts.model import ApiKey, Realm, User
from pushgate.devices.model import Device, DeviceStatus, PendingRegistration
from pushgate.errors import Unavailable
from pushgate.protocol.device_messages import DeviceDetails
from pushgate.sessions.model import Notification, PushSession, SessionStatus
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.listen import FINISHED_CHANNEL, NOTIFY_BATCH, listen_forever
from pushgate.store.ports import EXPIRED_EVENT, AuditEntry, OpenNotification
from pushgate.store.sealing import Sealer
from pushgate.store.sql import create_engine

_PENDING = SessionStatus.PENDING.value
_UNAVAILABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
)


def _columns(table: Table, alias: str, prefix: str = "") -> str:
    return ", ".join(f"{alias}.{c.name} AS {prefix}{c.name}" for c in table.columns)


_NAMES = {table.name: [c.name for c in table.columns] for table in t.metadata.sorted_tables}


def _split(record: asyncpg.Record, *tables: Table) -> list[dict[str, Any]]:
    """A joined row cut back into one mapping per table, by position: the SELECT lists each
    table's columns in schema order (`_columns`), and slicing is ~10x cheaper than names."""
    values = tuple(record.values())
    parts, start = [], 0
    for table in tables:
        names = _NAMES[table.name]
        parts.append(dict(zip(names, values[start : start + len(names)], strict=True)))
        start += len(names)
    return parts


def _insert(table: Table, *, ignore_duplicate: bool = False) -> str:
    names = [c.name for c in table.columns if not (table is t.audit and c.name == "id")]
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders})"
    return sql + (" ON CONFLICT DO NOTHING" if ignore_duplicate else "")


def _args(table: Table, values: Mapping[str, Any]) -> list[Any]:
    return [values[c.name] for c in table.columns if c.name in values]


_GET_REALM = "SELECT * FROM realms WHERE name = $1"
_LIST_REALMS = "SELECT * FROM realms ORDER BY name"
_GET_USER = "SELECT * FROM users WHERE realm = $1 AND username = $2"
_FIND_API_KEY = "SELECT * FROM api_keys WHERE key_hash = $1"
_GET_REGISTRATION = "SELECT * FROM registrations WHERE message_id = $1 AND realm = $2"
_COMPLETE_REGISTRATION = (
    "UPDATE registrations SET completed_ms = $2"
    " WHERE message_id = $1 AND completed_ms IS NULL AND expires_ms > $2"
)
_GET_DEVICE = (
    f"SELECT {_columns(t.devices, 'd', 'd_')}, {_columns(t.users, 'u', 'u_')}"
    " FROM devices d JOIN users u ON u.id = d.user_id"
    " WHERE d.realm = $1 AND d.mechanism_uid = $2"
)
_ACTIVE_DEVICES = "SELECT * FROM devices WHERE user_id = $1 AND status = $2 ORDER BY created_ms, id"
_UPDATE_DEVICE = (
    "UPDATE devices SET push_token = $2, device_type = $3, communication_type = $4,"
    " name = COALESCE($5, name), updated_ms = $6 WHERE id = $1"
)
_GET_SESSION = "SELECT * FROM sessions WHERE id = $1 AND realm = $2"
# The compare-and-set and its NOTIFY in one round trip: a row comes back only if it won.
_FINISH_SESSION = (
    "WITH won AS (UPDATE sessions SET status = $2, detail = COALESCE($3, detail),"
    " updated_ms = $4 WHERE id = $1 AND status = '" + _PENDING + "'"
    " AND ($5 = false OR expires_ms > $4) RETURNING id)"
    f" SELECT pg_notify('{FINISHED_CHANNEL}', id) FROM won"
)
_OPEN_NOTIFICATION = (
    f"SELECT {_columns(t.notifications, 'n', 'n_')}, {_columns(t.devices, 'd', 'd_')},"
    f" {_columns(t.sessions, 's', 's_')}"
    " FROM notifications n JOIN devices d ON d.id = n.device_id"
    " JOIN sessions s ON s.id = n.session_id WHERE n.message_id = $1 AND s.realm = $2"
)
_ANSWER_NOTIFICATION = (
    "UPDATE notifications SET answered_ms = $2 WHERE message_id = $1 AND answered_ms IS NULL"
)
# A CTE runs once; as an IN (...) subquery the LIMIT could be applied per re-scan.
_EXPIRE_DUE = (
    f"WITH due AS (SELECT id FROM sessions WHERE status = '{_PENDING}' AND expires_ms <= $1"
    " ORDER BY expires_ms LIMIT $3 FOR UPDATE SKIP LOCKED),"
    " x AS (UPDATE sessions s SET status = $2, updated_ms = $1 FROM due WHERE s.id = due.id"
    " RETURNING s.id, s.realm),"
    " a AS (INSERT INTO audit (realm, at_ms, event, subject, data)"
    f" SELECT realm, $1, '{EXPIRED_EVENT}', id, '{{}}' FROM x)"
    " SELECT id, realm FROM x"
)
_NOTIFY = f"SELECT pg_notify('{FINISHED_CHANNEL}', $1)"
# An answer in one statement (so it needs no BEGIN/COMMIT): the session's compare-and-set
# first; the notification and the audit row only if it won, and the NOTIFY with it. An answered
# notification always has a finished session, so the two cannot disagree.
_RECORD_ANSWER = (
    "WITH s AS (UPDATE sessions SET status = $4, detail = COALESCE($5, detail), updated_ms = $2"
    f" WHERE id = $3 AND status = '{_PENDING}' AND expires_ms > $2 RETURNING id, realm),"
    " n AS (UPDATE notifications SET answered_ms = $2"
    " WHERE message_id = $1 AND answered_ms IS NULL AND EXISTS (SELECT 1 FROM s)"
    " RETURNING message_id),"
    " a AS (INSERT INTO audit (realm, at_ms, event, subject, data)"
    " SELECT s.realm, $2, $6, s.id, $7 FROM s WHERE EXISTS (SELECT 1 FROM n))"
    f" SELECT pg_notify('{FINISHED_CHANNEL}', s.id), (SELECT count(*) FROM n) AS answered"
    " FROM s"
)


_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def _unnest(table: Table, first: int) -> str:
    """`SELECT * FROM unnest($n::type[], ...)`: many rows of `table` in one parameter each."""
    casts = [
        f"${first + i}::{c.type.compile(dialect=_DIALECT)}[]" for i, c in enumerate(table.columns)
    ]
    return f"SELECT * FROM unnest({', '.join(casts)})"


_SESSION_COLUMNS = len(t.sessions.columns)
_NOTIFICATION_COLUMNS = len(t.notifications.columns)
# A session, its notifications and its audit row: one statement, so atomic without BEGIN.
_ADD_SESSION = (
    f"WITH s AS ({_insert(t.sessions)}),"
    f" n AS (INSERT INTO notifications {_unnest(t.notifications, _SESSION_COLUMNS + 1)})"
    " INSERT INTO audit (realm, at_ms, event, subject, data) VALUES ("
    + ", ".join(f"${_SESSION_COLUMNS + _NOTIFICATION_COLUMNS + i}" for i in range(1, 6))
    + ")"
)
_DEVICE_AND_PENDING = (
    f"SELECT {_columns(t.devices, 'd', 'd_')}, {_columns(t.users, 'u', 'u_')},"
    f" {_columns(t.notifications, 'n', 'n_')}, {_columns(t.sessions, 's', 's_')}"
    " FROM devices d JOIN users u ON u.id = d.user_id"
    " LEFT JOIN (notifications n JOIN sessions s ON s.id = n.session_id"
    f" AND s.status = '{_PENDING}' AND s.expires_ms > $3)"
    " ON n.device_id = d.id AND n.answered_ms IS NULL"
    " WHERE d.realm = $1 AND d.mechanism_uid = $2"
    " ORDER BY n.created_ms, n.message_id LIMIT $4"
)
_USER_AND_DEVICES = (
    f"SELECT {_columns(t.users, 'u', 'u_')}, {_columns(t.devices, 'd', 'd_')}"
    " FROM users u LEFT JOIN devices d ON d.user_id = u.id AND d.status = $3"
    " WHERE u.realm = $1 AND u.username = $2 ORDER BY d.created_ms, d.id"
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
            _insert(t.realms, ignore_duplicate=True), realm.name, realm.created_ms
        )
        return _updated_one(status)

    async def get_realm(self, name: str) -> Realm | None:
        row = await self._conn.fetchrow(_GET_REALM, name)
        return rows.realm(row) if row else None

    async def list_realms(self) -> Sequence[Realm]:
        return [rows.realm(r) for r in await self._conn.fetch(_LIST_REALMS)]

    async def add_user(self, user: User) -> bool:
        status = await self._conn.execute(
            _insert(t.users, ignore_duplicate=True), *_args(t.users, rows.user_values(user))
        )
        return _updated_one(status)

    async def get_user(self, realm: str, username: str) -> User | None:
        row = await self._conn.fetchrow(_GET_USER, realm, username)
        return rows.user(row) if row else None

    async def add_api_key(self, key: ApiKey) -> None:
        await self._conn.execute(_insert(t.api_keys), *_args(t.api_keys, rows.api_key_values(key)))

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = await self._conn.fetchrow(_FIND_API_KEY, key_hash)
        return rows.api_key(row) if row else None

    # registration and devices ----------------------------------------------------------------

    async def add_registration(self, registration: PendingRegistration) -> None:
        values = rows.registration_values(registration, self._sealer)
        await self._conn.execute(_insert(t.registrations), *_args(t.registrations, values))

    async def get_registration(self, realm: str, message_id: str) -> PendingRegistration | None:
        row = await self._conn.fetchrow(_GET_REGISTRATION, message_id, realm)
        return rows.registration(row, self._sealer) if row else None

    async def complete_registration(self, message_id: str, now_ms: int) -> bool:
        return _updated_one(await self._conn.execute(_COMPLETE_REGISTRATION, message_id, now_ms))

    async def add_device(self, device: Device) -> bool:
        status = await self._conn.execute(
            _insert(t.devices, ignore_duplicate=True),
            *_args(t.devices, rows.device_values(device, self._sealer)),
        )
        return _updated_one(status)

    async def get_device(self, realm: str, mechanism_uid: str) -> tuple[Device, User] | None:
        row = await self._conn.fetchrow(_GET_DEVICE, realm, mechanism_uid)
        if row is None:
            return None
        device, user = _split(row, t.devices, t.users)
        return rows.device(device, self._sealer), rows.user(user)

    async def active_devices(self, user_id: str) -> Sequence[Device]:
        found = await self._conn.fetch(_ACTIVE_DEVICES, user_id, DeviceStatus.ACTIVE.value)
        return [rows.device(r, self._sealer) for r in found]

    async def user_and_devices(
        self, realm: str, username: str
    ) -> tuple[User | None, Sequence[Device]]:
        found = await self._conn.fetch(
            _USER_AND_DEVICES, realm, username, DeviceStatus.ACTIVE.value
        )
        if not found:
            return None, []
        parts = [_split(r, t.users, t.devices) for r in found]
        devices = [
            rows.device(device, self._sealer) for _, device in parts if device["id"] is not None
        ]
        return rows.user(parts[0][0]), devices

    async def update_device(self, device_id: str, details: DeviceDetails, now_ms: int) -> None:
        await self._conn.execute(
            _UPDATE_DEVICE,
            device_id,
            details.device_id,
            details.device_type,
            details.communication_type,
            details.device_name,
            now_ms,
        )

    async def consume_message(self, digest: str, realm: str, now_ms: int) -> bool:
        status = await self._conn.execute(
            _insert(t.consumed_messages, ignore_duplicate=True), digest, realm, now_ms
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
            _ADD_SESSION,
            *_args(t.sessions, rows.session_values(session)),
            *([v[name] for v in values] for name in columns),
            audit.realm,
            audit.at_ms,
            audit.event,
            audit.subject,
            _json(audit.data),
        )

    async def get_session(self, realm: str, session_id: str) -> PushSession | None:
        row = await self._conn.fetchrow(_GET_SESSION, session_id, realm)
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
            _FINISH_SESSION, session_id, status.value, detail, now_ms, before_deadline
        )
        return won is not None

    async def get_open_notification(self, realm: str, message_id: str) -> OpenNotification | None:
        row = await self._conn.fetchrow(_OPEN_NOTIFICATION, message_id, realm)
        if row is None:
            return None
        notification, device, session = _split(row, t.notifications, t.devices, t.sessions)
        return OpenNotification(
            rows.notification(notification),
            rows.device(device, self._sealer),
            rows.session(session),
        )

    async def answer_notification(self, message_id: str, now_ms: int) -> bool:
        return _updated_one(await self._conn.execute(_ANSWER_NOTIFICATION, message_id, now_ms))

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
            _RECORD_ANSWER,
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
        found = await self._conn.fetch(_DEVICE_AND_PENDING, realm, mechanism_uid, now_ms, limit)
        if not found:
            return None
        parts = [_split(r, t.devices, t.users, t.notifications, t.sessions) for r in found]
        device, user, _, _ = parts[0]
        pending = [
            (rows.notification(n), rows.session(s))
            for _, _, n, s in parts
            if n["message_id"] is not None  # the LEFT JOIN found no open notification
        ]
        return rows.device(device, self._sealer), rows.user(user), pending

    async def expire_due(self, now_ms: int, limit: int) -> Sequence[tuple[str, str]]:
        found = await self._conn.fetch(_EXPIRE_DUE, now_ms, SessionStatus.EXPIRED.value, limit)
        expired = [(r["id"], r["realm"]) for r in found]
        ids = [session_id for session_id, _ in expired]
        for start in range(0, len(ids), NOTIFY_BATCH):
            await self._conn.execute(_NOTIFY, ",".join(ids[start : start + NOTIFY_BATCH]))
        return expired

    async def audit(
        self, realm: str, event: str, subject: str, data: Mapping[str, object], now_ms: int
    ) -> None:
        await self._conn.execute(_insert(t.audit), realm, now_ms, event, subject, _json(data))
