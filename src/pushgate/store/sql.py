"""The SQLite adapter of the store port (the embedded default): SQLAlchemy 2 Core, async.

SQLite serialises writers. Every transaction starts with BEGIN IMMEDIATE and the pool holds one
connection, so a read-then-write never fails half-way with "database is locked" and the
compare-and-set updates below cannot interleave. Other processes on the same file wait on the
busy timeout. PostgreSQL has its own adapter (`postgres.py`); both share `schema.py`,
`rows.py` and the Alembic migrations, and the store tests run against both.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
from sqlalchemy import Table, and_, bindparam, event, select, update
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from pushgate.accounts.model import ApiKey, Realm, User
from pushgate.devices.model import Device, DeviceStatus, PendingRegistration
from pushgate.errors import ConfigError, Unavailable
from pushgate.protocol.device_messages import DeviceDetails
from pushgate.sessions.model import Notification, PushSession, SessionStatus
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.ports import EXPIRED_EVENT, AuditEntry, OpenNotification
from pushgate.store.sealing import Sealer


def async_url(url: str) -> str:
    """Accept plain `sqlite:///` and `postgresql://` URLs and pick the async driver."""
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        return url
    raise ConfigError(f"unsupported database URL scheme in {url.split(':', 1)[0]!r}")


def is_postgres(url: str) -> bool:
    return async_url(url).startswith("postgresql")


def create_engine(url: str, *, pool_size: int = 1) -> AsyncEngine:
    """A SQLAlchemy engine for either database: the SQLite store, and migrations for both."""
    full = async_url(url)
    if full.startswith("sqlite"):
        engine = create_async_engine(full, pool_size=1, max_overflow=0, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(full, pool_size=pool_size, max_overflow=0, hide_parameters=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that BEGIN IMMEDIATE below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class SqlStore:
    def __init__(self, engine: AsyncEngine, sealer: Sealer) -> None:
        self.engine = engine
        self._sealer = sealer

    @classmethod
    def from_url(cls, url: str, sealer: Sealer) -> SqlStore:
        return cls(create_engine(url), sealer)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTransaction]:
        try:
            async with self.engine.begin() as conn:
                yield SqlTransaction(conn, self._sealer)
        except DBAPIError as exc:
            if isinstance(exc, OperationalError) or exc.connection_invalidated:
                raise Unavailable("storage is unavailable", reason=str(exc.orig)) from exc
            raise
        except OSError as exc:  # the driver could not even open the file
            raise Unavailable("storage is unavailable", reason=str(exc)) from exc

    def autocommit(self) -> AbstractAsyncContextManager[SqlTransaction]:
        # One connection and BEGIN IMMEDIATE: the block is one transaction, which makes every
        # method atomic and costs nothing extra here.
        return self.transaction()

    async def aclose(self) -> None:
        await self.engine.dispose()

    async def watch_finished(self, publish: Callable[[str], None]) -> None:
        """SQLite has no channel between processes: waiters re-read the session instead."""
        await anyio.sleep_forever()


def _labelled(table: Table, prefix: str) -> list[Any]:
    return [c.label(prefix + c.name) for c in table.columns]


# Statements built once. Building a Core statement and its cache key costs more CPU than
# running it, so a call only binds its values. Bind names never equal a column name of an
# UPDATE's table (SQLAlchemy reserves those).
_GET_REALM = select(t.realms).where(t.realms.c.name == bindparam("name"))
_GET_USER = select(t.users).where(
    t.users.c.realm == bindparam("realm"), t.users.c.username == bindparam("username")
)
_FIND_API_KEY = select(t.api_keys).where(t.api_keys.c.key_hash == bindparam("key_hash"))
_GET_REGISTRATION = select(t.registrations).where(
    t.registrations.c.message_id == bindparam("message_id"),
    t.registrations.c.realm == bindparam("realm"),
)
_GET_DEVICE = (
    select(*_labelled(t.devices, "d_"), *_labelled(t.users, "u_"))
    .join(t.users, t.users.c.id == t.devices.c.user_id)
    .where(
        t.devices.c.realm == bindparam("realm"),
        t.devices.c.mechanism_uid == bindparam("mechanism_uid"),
    )
)
_ACTIVE_DEVICES = (
    select(t.devices)
    .where(t.devices.c.user_id == bindparam("user_id"), t.devices.c.status == DeviceStatus.ACTIVE)
    .order_by(t.devices.c.created_ms, t.devices.c.id)
)
_GET_SESSION = select(t.sessions).where(
    t.sessions.c.id == bindparam("session_id"), t.sessions.c.realm == bindparam("realm")
)
_OPEN_NOTIFICATION = (
    select(
        *_labelled(t.notifications, "n_"),
        *_labelled(t.devices, "d_"),
        *_labelled(t.sessions, "s_"),
    )
    .join(t.devices, t.devices.c.id == t.notifications.c.device_id)
    .join(t.sessions, t.sessions.c.id == t.notifications.c.session_id)
    .where(
        t.notifications.c.message_id == bindparam("message_id"),
        t.sessions.c.realm == bindparam("realm"),
    )
)
_ANSWER_NOTIFICATION = (
    update(t.notifications)
    .where(
        t.notifications.c.message_id == bindparam("b_message_id"),
        t.notifications.c.answered_ms.is_(None),
    )
    .values(answered_ms=bindparam("b_now_ms"))
)
_PENDING_NOTIFICATIONS = (
    select(*_labelled(t.notifications, "n_"), *_labelled(t.sessions, "s_"))
    .join(t.sessions, t.sessions.c.id == t.notifications.c.session_id)
    .where(
        t.notifications.c.device_id == bindparam("device_id"),
        t.notifications.c.answered_ms.is_(None),
        t.sessions.c.status == SessionStatus.PENDING.value,
        t.sessions.c.expires_ms > bindparam("now_ms"),
    )
    .order_by(t.notifications.c.created_ms, t.notifications.c.message_id)
    .limit(bindparam("limit"))
)


@functools.cache
def _finish_statement(before_deadline: bool, with_detail: bool) -> Any:
    c = t.sessions.c
    condition = and_(c.id == bindparam("b_id"), c.status == SessionStatus.PENDING.value)
    if before_deadline:
        condition = and_(condition, c.expires_ms > bindparam("b_now_ms"))
    values: dict[str, Any] = {"status": bindparam("b_status"), "updated_ms": bindparam("b_now_ms")}
    if with_detail:
        values["detail"] = bindparam("b_detail")
    return update(t.sessions).where(condition).values(**values)


class SqlTransaction:
    def __init__(self, conn: AsyncConnection, sealer: Sealer) -> None:
        self._conn = conn
        self._sealer = sealer

    async def _insert(self, table: Table, values: Mapping[str, Any]) -> None:
        await self._conn.execute(table.insert(), dict(values))

    async def _insert_new(self, table: Table, values: Mapping[str, Any]) -> bool:
        """INSERT unless the key exists; False on a duplicate, without aborting the transaction."""
        result = await self._conn.execute(insert(table).values(**values).on_conflict_do_nothing())
        return bool(result.rowcount == 1)

    # realms, users, keys -------------------------------------------------------------------

    async def add_realm(self, realm: Realm) -> bool:
        return await self._insert_new(
            t.realms, {"name": realm.name, "created_ms": realm.created_ms}
        )

    async def get_realm(self, name: str) -> Realm | None:
        row = (await self._conn.execute(_GET_REALM, {"name": name})).first()
        return rows.realm(row._mapping) if row else None

    async def add_user(self, user: User) -> bool:
        return await self._insert_new(t.users, rows.user_values(user))

    async def get_user(self, realm: str, username: str) -> User | None:
        params = {"realm": realm, "username": username}
        row = (await self._conn.execute(_GET_USER, params)).first()
        return rows.user(row._mapping) if row else None

    async def add_api_key(self, key: ApiKey) -> None:
        await self._insert(t.api_keys, rows.api_key_values(key))

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = (await self._conn.execute(_FIND_API_KEY, {"key_hash": key_hash})).first()
        return rows.api_key(row._mapping) if row else None

    # registration and devices ----------------------------------------------------------------

    async def add_registration(self, registration: PendingRegistration) -> None:
        await self._insert(t.registrations, rows.registration_values(registration, self._sealer))

    async def get_registration(self, realm: str, message_id: str) -> PendingRegistration | None:
        params = {"message_id": message_id, "realm": realm}
        row = (await self._conn.execute(_GET_REGISTRATION, params)).first()
        return rows.registration(row._mapping, self._sealer) if row else None

    async def complete_registration(self, message_id: str, now_ms: int) -> bool:
        c = t.registrations.c
        result = await self._conn.execute(
            update(t.registrations)
            .where(c.message_id == message_id, c.completed_ms.is_(None), c.expires_ms > now_ms)
            .values(completed_ms=now_ms)
        )
        return bool(result.rowcount == 1)

    async def add_device(self, device: Device) -> bool:
        return await self._insert_new(t.devices, rows.device_values(device, self._sealer))

    async def get_device(self, realm: str, mechanism_uid: str) -> tuple[Device, User] | None:
        params = {"realm": realm, "mechanism_uid": mechanism_uid}
        row = (await self._conn.execute(_GET_DEVICE, params)).first()
        if row is None:
            return None
        m = row._mapping
        return rows.device(rows.prefixed(m, "d_"), self._sealer), rows.user(rows.prefixed(m, "u_"))

    async def active_devices(self, user_id: str) -> Sequence[Device]:
        found = await self._conn.execute(_ACTIVE_DEVICES, {"user_id": user_id})
        return [rows.device(r._mapping, self._sealer) for r in found]

    async def user_and_devices(
        self, realm: str, username: str
    ) -> tuple[User | None, Sequence[Device]]:
        user = await self.get_user(realm, username)
        return user, (await self.active_devices(user.id) if user else [])

    async def update_device(self, device_id: str, details: DeviceDetails, now_ms: int) -> None:
        values: dict[str, Any] = {
            "push_token": details.device_id,
            "device_type": details.device_type,
            "communication_type": details.communication_type,
            "updated_ms": now_ms,
        }
        if details.device_name is not None:
            values["name"] = details.device_name
        await self._conn.execute(
            update(t.devices).where(t.devices.c.id == device_id).values(**values)
        )

    async def consume_message(self, digest: str, realm: str, now_ms: int) -> bool:
        return await self._insert_new(
            t.consumed_messages, {"digest": digest, "realm": realm, "created_ms": now_ms}
        )

    # sessions and notifications -------------------------------------------------------------

    async def add_session(
        self,
        session: PushSession,
        notifications: Sequence[Notification],
        audit: AuditEntry,
    ) -> None:
        await self._conn.execute(t.sessions.insert(), rows.session_values(session))
        if notifications:
            await self._conn.execute(
                t.notifications.insert(), [rows.notification_values(n) for n in notifications]
            )
        await self.audit(audit.realm, audit.event, audit.subject, audit.data, audit.at_ms)

    async def get_session(self, realm: str, session_id: str) -> PushSession | None:
        params = {"session_id": session_id, "realm": realm}
        row = (await self._conn.execute(_GET_SESSION, params)).first()
        return rows.session(row._mapping) if row else None

    async def finish_session(
        self,
        session_id: str,
        status: SessionStatus,
        detail: str | None,
        now_ms: int,
        *,
        before_deadline: bool,
    ) -> bool:
        params: dict[str, Any] = {"b_id": session_id, "b_status": status.value, "b_now_ms": now_ms}
        if detail is not None:
            params["b_detail"] = detail
        statement = _finish_statement(before_deadline, detail is not None)
        result = await self._conn.execute(statement, params)
        return bool(result.rowcount == 1)

    async def get_open_notification(self, realm: str, message_id: str) -> OpenNotification | None:
        params = {"message_id": message_id, "realm": realm}
        row = (await self._conn.execute(_OPEN_NOTIFICATION, params)).first()
        if row is None:
            return None
        m = row._mapping
        return OpenNotification(
            rows.notification(rows.prefixed(m, "n_")),
            rows.device(rows.prefixed(m, "d_"), self._sealer),
            rows.session(rows.prefixed(m, "s_")),
        )

    async def answer_notification(self, message_id: str, now_ms: int) -> bool:
        params = {"b_message_id": message_id, "b_now_ms": now_ms}
        result = await self._conn.execute(_ANSWER_NOTIFICATION, params)
        return bool(result.rowcount == 1)

    async def record_answer(
        self,
        message_id: str,
        session_id: str,
        status: SessionStatus,
        detail: str | None,
        now_ms: int,
        audit: AuditEntry,
    ) -> bool:
        # Inside the block's one transaction: a False here is rolled back by the caller.
        if not await self.finish_session(session_id, status, detail, now_ms, before_deadline=True):
            return False
        if not await self.answer_notification(message_id, now_ms):
            return False
        await self.audit(audit.realm, audit.event, audit.subject, audit.data, audit.at_ms)
        return True

    async def _pending_notifications(
        self, device_id: str, now_ms: int, limit: int
    ) -> Sequence[tuple[Notification, PushSession]]:
        params = {"device_id": device_id, "now_ms": now_ms, "limit": limit}
        found = await self._conn.execute(_PENDING_NOTIFICATIONS, params)
        return [
            (
                rows.notification(rows.prefixed(r._mapping, "n_")),
                rows.session(rows.prefixed(r._mapping, "s_")),
            )
            for r in found
        ]

    async def device_and_pending(
        self, realm: str, mechanism_uid: str, now_ms: int, limit: int
    ) -> tuple[Device, User, Sequence[tuple[Notification, PushSession]]] | None:
        found = await self.get_device(realm, mechanism_uid)
        if found is None:
            return None
        return *found, await self._pending_notifications(found[0].id, now_ms, limit)

    async def expire_due(self, now_ms: int, limit: int) -> Sequence[tuple[str, str]]:
        c = t.sessions.c
        due = (
            select(c.id)
            .where(c.status == SessionStatus.PENDING.value, c.expires_ms <= now_ms)
            .order_by(c.expires_ms)
            .limit(limit)
            .scalar_subquery()
        )
        result = await self._conn.execute(
            update(t.sessions)
            .where(c.id.in_(due), c.status == SessionStatus.PENDING.value)
            .values(status=SessionStatus.EXPIRED.value, updated_ms=now_ms)
            .returning(c.id, c.realm)
        )
        expired = [(r.id, r.realm) for r in result]
        if expired:
            await self._conn.execute(
                t.audit.insert(),
                [
                    {
                        "realm": realm,
                        "at_ms": now_ms,
                        "event": EXPIRED_EVENT,
                        "subject": session_id,
                        "data": "{}",
                    }
                    for session_id, realm in expired
                ],
            )
        return expired

    async def audit(
        self, realm: str, event: str, subject: str, data: Mapping[str, object], now_ms: int
    ) -> None:
        await self._insert(
            t.audit,
            {
                "realm": realm,
                "at_ms": now_ms,
                "event": event,
                "subject": subject,
                "data": json.dumps(data, separators=(",", ":"), sort_keys=True),
            },
        )
