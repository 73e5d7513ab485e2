"""The SQL adapter of the store port: SQLAlchemy 2 Core, async, SQLite or PostgreSQL.

SQLite (the embedded default) serialises writers: every transaction starts with
BEGIN IMMEDIATE, so a read-then-write never fails half-way with "database is locked".
PostgreSQL runs READ COMMITTED; the compare-and-set updates below re-check their WHERE clause
against the committed row, which is what lets exactly one terminal transition win
(security.md §7).
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
from sqlalchemy import Row, and_, bindparam, event, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from pushgate.accounts.model import ApiKey, Realm, User
from pushgate.devices.model import Device, DeviceStatus, PendingRegistration
from pushgate.errors import ConfigError, Unavailable
from pushgate.protocol.device_messages import DeviceDetails
from pushgate.protocol.push_payload import PushType
from pushgate.sessions.model import Content, Notification, PushSession, SessionStatus
from pushgate.store import schema as t
from pushgate.store.listen import FINISHED_CHANNEL, NOTIFY_BATCH, listen_forever
from pushgate.store.ports import OpenNotification


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


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    full = async_url(url)
    if full.startswith("sqlite"):
        engine = create_async_engine(full, pool_size=1, max_overflow=0, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        full, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True
    )


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
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._insert = postgresql.insert if self._postgres else sqlite.insert

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 10) -> SqlStore:
        return cls(create_engine(url, pool_size=pool_size))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTransaction]:
        try:
            async with self.engine.begin() as conn:
                yield SqlTransaction(conn, self._insert, postgres=self._postgres)
        except DBAPIError as exc:
            if isinstance(exc, OperationalError) or exc.connection_invalidated:
                raise Unavailable("storage is unavailable", reason=str(exc.orig)) from exc
            raise
        except OSError as exc:  # the driver could not even connect
            raise Unavailable("storage is unavailable", reason=str(exc)) from exc

    async def aclose(self) -> None:
        await self.engine.dispose()

    async def watch_finished(self, publish: Callable[[str], None]) -> None:
        """Call `publish(session_id)` for every session another process finishes; runs until
        cancelled. PostgreSQL delivers them by LISTEN/NOTIFY. SQLite has no such channel: a
        waiter there re-reads the session at a short interval instead."""
        if not self._postgres:
            await anyio.sleep_forever()
        await listen_forever(self.engine.url, FINISHED_CHANNEL, publish)


def _realm(row: Row[Any]) -> Realm:
    return Realm(row.name, row.created_ms)


def _user(row: Row[Any]) -> User:
    return User(row.id, row.realm, row.username, row.password_hash, row.created_ms)


def _device(row: Row[Any]) -> Device:
    return Device(
        id=row.id,
        realm=row.realm,
        user_id=row.user_id,
        mechanism_uid=row.mechanism_uid,
        secret=bytes(row.secret),
        push_token=row.push_token,
        device_type=row.device_type,
        communication_type=row.communication_type,
        name=row.name,
        status=DeviceStatus(row.status),
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
    )


def _session(row: Row[Any]) -> PushSession:
    return PushSession(
        id=row.id,
        realm=row.realm,
        username=row.username,
        user_id=row.user_id,
        status=SessionStatus(row.status),
        content=Content(row.title, row.subtitle, row.body, row.payload),
        push_type=PushType(row.push_type),
        notification_count=row.notification_count,
        detail=row.detail,
        created_ms=row.created_ms,
        expires_ms=row.expires_ms,
        updated_ms=row.updated_ms,
    )


def _numbers(text: str | None) -> tuple[int, ...] | None:
    return tuple(int(n) for n in text.split(",")) if text else None


def _notification(row: Row[Any]) -> Notification:
    return Notification(
        message_id=row.message_id,
        session_id=row.session_id,
        device_id=row.device_id,
        challenge=bytes(row.challenge),
        numbers=_numbers(row.numbers),
        answer=row.answer,
        created_ms=row.created_ms,
        answered_ms=row.answered_ms,
    )


def _labelled(table: Any, prefix: str) -> list[Any]:
    return [c.label(prefix + c.name) for c in table.columns]


def _unprefix(row: Row[Any], prefix: str) -> Any:
    """A row view of the columns labelled with `prefix` (joins of tables with shared names)."""
    values = {k[len(prefix) :]: v for k, v in row._mapping.items() if k.startswith(prefix)}
    return _Attrs(values)


class _Attrs:
    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


# Hot-path statements, built once. Building a Core statement and its cache key costs more CPU
# than running it (the labelled three-table join: ~0.5 ms), so a call only binds its values.
# Bind names never equal a column name of an UPDATE's table (SQLAlchemy reserves those).
_GET_REALM = select(t.realms).where(t.realms.c.name == bindparam("name"))
_GET_USER = select(t.users).where(
    t.users.c.realm == bindparam("realm"), t.users.c.username == bindparam("username")
)
_FIND_API_KEY = select(t.api_keys).where(t.api_keys.c.key_hash == bindparam("key_hash"))
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
_INSERT_SESSION = insert(t.sessions)
_INSERT_NOTIFICATIONS = insert(t.notifications)
_INSERT_AUDIT = insert(t.audit)
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
    def __init__(self, conn: AsyncConnection, insert_fn: Any, *, postgres: bool) -> None:
        self._conn = conn
        self._insert = insert_fn
        self._postgres = postgres

    async def _announce(self, session_ids: Sequence[str]) -> None:
        """NOTIFY inside the transaction: PostgreSQL delivers it only if the change commits."""
        if not self._postgres:
            return
        for start in range(0, len(session_ids), NOTIFY_BATCH):
            payload = ",".join(session_ids[start : start + NOTIFY_BATCH])
            await self._conn.execute(select(func.pg_notify(FINISHED_CHANNEL, payload)))

    async def _insert_new(self, table: Any, values: Mapping[str, Any]) -> bool:
        """INSERT unless the key exists; False on a duplicate, without aborting the transaction."""
        result = await self._conn.execute(
            self._insert(table).values(**values).on_conflict_do_nothing()
        )
        return bool(result.rowcount == 1)

    # realms, users, keys -------------------------------------------------------------------

    async def add_realm(self, realm: Realm) -> bool:
        return await self._insert_new(
            t.realms, {"name": realm.name, "created_ms": realm.created_ms}
        )

    async def get_realm(self, name: str) -> Realm | None:
        row = (await self._conn.execute(_GET_REALM, {"name": name})).first()
        return _realm(row) if row else None

    async def list_realms(self) -> Sequence[Realm]:
        rows = await self._conn.execute(select(t.realms).order_by(t.realms.c.name))
        return [_realm(r) for r in rows]

    async def add_user(self, user: User) -> bool:
        return await self._insert_new(
            t.users,
            {
                "id": user.id,
                "realm": user.realm,
                "username": user.username,
                "password_hash": user.password_hash,
                "created_ms": user.created_ms,
            },
        )

    async def get_user(self, realm: str, username: str) -> User | None:
        row = (await self._conn.execute(_GET_USER, {"realm": realm, "username": username})).first()
        return _user(row) if row else None

    async def add_api_key(self, key: ApiKey) -> None:
        await self._conn.execute(
            insert(t.api_keys).values(
                id=key.id, realm=key.realm, key_hash=key.key_hash, created_ms=key.created_ms
            )
        )

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = (await self._conn.execute(_FIND_API_KEY, {"key_hash": key_hash})).first()
        if row is None:
            return None
        return ApiKey(row.id, row.realm, row.key_hash, row.created_ms, row.revoked_ms)

    # registration and devices ----------------------------------------------------------------

    async def add_registration(self, registration: PendingRegistration) -> None:
        await self._conn.execute(
            insert(t.registrations).values(
                message_id=registration.message_id,
                realm=registration.realm,
                user_id=registration.user_id,
                device_id=registration.device_id,
                secret=registration.secret,
                challenge=registration.challenge,
                created_ms=registration.created_ms,
                expires_ms=registration.expires_ms,
            )
        )

    async def get_registration(self, realm: str, message_id: str) -> PendingRegistration | None:
        query = select(t.registrations).where(
            t.registrations.c.message_id == message_id, t.registrations.c.realm == realm
        )
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        return PendingRegistration(
            message_id=row.message_id,
            realm=row.realm,
            user_id=row.user_id,
            device_id=row.device_id,
            secret=bytes(row.secret),
            challenge=bytes(row.challenge),
            created_ms=row.created_ms,
            expires_ms=row.expires_ms,
            completed_ms=row.completed_ms,
        )

    async def complete_registration(self, message_id: str, now_ms: int) -> bool:
        c = t.registrations.c
        result = await self._conn.execute(
            update(t.registrations)
            .where(c.message_id == message_id, c.completed_ms.is_(None), c.expires_ms > now_ms)
            .values(completed_ms=now_ms)
        )
        return bool(result.rowcount == 1)

    async def add_device(self, device: Device) -> bool:
        return await self._insert_new(
            t.devices,
            {
                "id": device.id,
                "realm": device.realm,
                "user_id": device.user_id,
                "mechanism_uid": device.mechanism_uid,
                "secret": device.secret,
                "push_token": device.push_token,
                "device_type": device.device_type,
                "communication_type": device.communication_type,
                "name": device.name,
                "status": str(device.status),
                "created_ms": device.created_ms,
                "updated_ms": device.updated_ms,
            },
        )

    async def get_device(self, realm: str, mechanism_uid: str) -> tuple[Device, User] | None:
        params = {"realm": realm, "mechanism_uid": mechanism_uid}
        row = (await self._conn.execute(_GET_DEVICE, params)).first()
        if row is None:
            return None
        return _device(_unprefix(row, "d_")), _user(_unprefix(row, "u_"))

    async def active_devices(self, user_id: str) -> Sequence[Device]:
        rows = await self._conn.execute(_ACTIVE_DEVICES, {"user_id": user_id})
        return [_device(r) for r in rows]

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
        self, session: PushSession, notifications: Sequence[Notification]
    ) -> None:
        await self._conn.execute(
            _INSERT_SESSION,
            {
                "id": session.id,
                "realm": session.realm,
                "username": session.username,
                "user_id": session.user_id,
                "status": str(session.status),
                "title": session.content.title,
                "subtitle": session.content.subtitle,
                "body": session.content.body,
                "payload": session.content.payload,
                "push_type": str(session.push_type),
                "notification_count": session.notification_count,
                "detail": session.detail,
                "created_ms": session.created_ms,
                "expires_ms": session.expires_ms,
                "updated_ms": session.updated_ms,
            },
        )
        if notifications:
            await self._conn.execute(
                _INSERT_NOTIFICATIONS,
                [
                    {
                        "message_id": n.message_id,
                        "session_id": n.session_id,
                        "device_id": n.device_id,
                        "challenge": n.challenge,
                        "numbers": ",".join(map(str, n.numbers)) if n.numbers else None,
                        "answer": n.answer,
                        "created_ms": n.created_ms,
                        "answered_ms": None,
                    }
                    for n in notifications
                ],
            )

    async def get_session(self, realm: str, session_id: str) -> PushSession | None:
        params = {"session_id": session_id, "realm": realm}
        row = (await self._conn.execute(_GET_SESSION, params)).first()
        return _session(row) if row else None

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
        if result.rowcount != 1:
            return False
        await self._announce([session_id])
        return True

    async def get_open_notification(self, realm: str, message_id: str) -> OpenNotification | None:
        params = {"message_id": message_id, "realm": realm}
        row = (await self._conn.execute(_OPEN_NOTIFICATION, params)).first()
        if row is None:
            return None
        return OpenNotification(
            _notification(_unprefix(row, "n_")),
            _device(_unprefix(row, "d_")),
            _session(_unprefix(row, "s_")),
        )

    async def answer_notification(self, message_id: str, now_ms: int) -> bool:
        params = {"b_message_id": message_id, "b_now_ms": now_ms}
        result = await self._conn.execute(_ANSWER_NOTIFICATION, params)
        return bool(result.rowcount == 1)

    async def pending_notifications(
        self, device_id: str, now_ms: int, limit: int
    ) -> Sequence[tuple[Notification, PushSession]]:
        params = {"device_id": device_id, "now_ms": now_ms, "limit": limit}
        rows = await self._conn.execute(_PENDING_NOTIFICATIONS, params)
        return [(_notification(_unprefix(r, "n_")), _session(_unprefix(r, "s_"))) for r in rows]

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
        await self._announce([session_id for session_id, _ in expired])
        return expired

    async def audit(
        self, realm: str, event: str, subject: str, data: Mapping[str, object], now_ms: int
    ) -> None:
        await self._conn.execute(
            _INSERT_AUDIT,
            {
                "realm": realm,
                "at_ms": now_ms,
                "event": event,
                "subject": subject,
                "data": json.dumps(data, separators=(",", ":"), sort_keys=True),
            },
        )
