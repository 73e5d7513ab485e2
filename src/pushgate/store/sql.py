"""The SQL adapter of the store port: SQLAlchemy 2 Core, async, SQLite or PostgreSQL.

SQLite (the embedded default) serialises writers: every transaction starts with
BEGIN IMMEDIATE, so a read-then-write never fails half-way with "database is locked".
PostgreSQL runs READ COMMITTED; the compare-and-set updates below re-check their WHERE clause
against the committed row, which is what lets exactly one terminal transition win
(security.md §7).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Row, and_, event, insert, select, update
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
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 10) -> SqlStore:
        return cls(create_engine(url, pool_size=pool_size))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTransaction]:
        try:
            async with self.engine.begin() as conn:
                yield SqlTransaction(conn, self._insert)
        except DBAPIError as exc:
            if isinstance(exc, OperationalError) or exc.connection_invalidated:
                raise Unavailable("storage is unavailable", reason=str(exc.orig)) from exc
            raise
        except OSError as exc:  # the driver could not even connect
            raise Unavailable("storage is unavailable", reason=str(exc)) from exc

    async def aclose(self) -> None:
        await self.engine.dispose()


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


class SqlTransaction:
    def __init__(self, conn: AsyncConnection, insert_fn: Any) -> None:
        self._conn = conn
        self._insert = insert_fn

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
        row = (await self._conn.execute(select(t.realms).where(t.realms.c.name == name))).first()
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
        query = select(t.users).where(t.users.c.realm == realm, t.users.c.username == username)
        row = (await self._conn.execute(query)).first()
        return _user(row) if row else None

    async def add_api_key(self, key: ApiKey) -> None:
        await self._conn.execute(
            insert(t.api_keys).values(
                id=key.id, realm=key.realm, key_hash=key.key_hash, created_ms=key.created_ms
            )
        )

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        query = select(t.api_keys).where(t.api_keys.c.key_hash == key_hash)
        row = (await self._conn.execute(query)).first()
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
        query = (
            select(*_labelled(t.devices, "d_"), *_labelled(t.users, "u_"))
            .join(t.users, t.users.c.id == t.devices.c.user_id)
            .where(t.devices.c.realm == realm, t.devices.c.mechanism_uid == mechanism_uid)
        )
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        return _device(_unprefix(row, "d_")), _user(_unprefix(row, "u_"))

    async def active_devices(self, user_id: str) -> Sequence[Device]:
        query = (
            select(t.devices)
            .where(t.devices.c.user_id == user_id, t.devices.c.status == DeviceStatus.ACTIVE)
            .order_by(t.devices.c.created_ms, t.devices.c.id)
        )
        return [_device(r) for r in await self._conn.execute(query)]

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
            insert(t.sessions).values(
                id=session.id,
                realm=session.realm,
                username=session.username,
                user_id=session.user_id,
                status=str(session.status),
                title=session.content.title,
                subtitle=session.content.subtitle,
                body=session.content.body,
                payload=session.content.payload,
                push_type=str(session.push_type),
                notification_count=session.notification_count,
                detail=session.detail,
                created_ms=session.created_ms,
                expires_ms=session.expires_ms,
                updated_ms=session.updated_ms,
            )
        )
        if notifications:
            await self._conn.execute(
                insert(t.notifications),
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
        query = select(t.sessions).where(t.sessions.c.id == session_id, t.sessions.c.realm == realm)
        row = (await self._conn.execute(query)).first()
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
        c = t.sessions.c
        condition = and_(c.id == session_id, c.status == SessionStatus.PENDING.value)
        if before_deadline:
            condition = and_(condition, c.expires_ms > now_ms)
        values: dict[str, Any] = {"status": status.value, "updated_ms": now_ms}
        if detail is not None:
            values["detail"] = detail
        result = await self._conn.execute(update(t.sessions).where(condition).values(**values))
        return bool(result.rowcount == 1)

    async def get_open_notification(self, realm: str, message_id: str) -> OpenNotification | None:
        query = (
            select(
                *_labelled(t.notifications, "n_"),
                *_labelled(t.devices, "d_"),
                *_labelled(t.sessions, "s_"),
            )
            .join(t.devices, t.devices.c.id == t.notifications.c.device_id)
            .join(t.sessions, t.sessions.c.id == t.notifications.c.session_id)
            .where(t.notifications.c.message_id == message_id, t.sessions.c.realm == realm)
        )
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        return OpenNotification(
            _notification(_unprefix(row, "n_")),
            _device(_unprefix(row, "d_")),
            _session(_unprefix(row, "s_")),
        )

    async def answer_notification(self, message_id: str, now_ms: int) -> bool:
        c = t.notifications.c
        result = await self._conn.execute(
            update(t.notifications)
            .where(c.message_id == message_id, c.answered_ms.is_(None))
            .values(answered_ms=now_ms)
        )
        return bool(result.rowcount == 1)

    async def pending_notifications(
        self, device_id: str, now_ms: int, limit: int
    ) -> Sequence[tuple[Notification, PushSession]]:
        n, s = t.notifications.c, t.sessions.c
        query = (
            select(*_labelled(t.notifications, "n_"), *_labelled(t.sessions, "s_"))
            .join(t.sessions, s.id == n.session_id)
            .where(
                n.device_id == device_id,
                n.answered_ms.is_(None),
                s.status == SessionStatus.PENDING.value,
                s.expires_ms > now_ms,
            )
            .order_by(n.created_ms, n.message_id)
            .limit(limit)
        )
        rows = await self._conn.execute(query)
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
        return [(r.id, r.realm) for r in result]

    async def audit(
        self, realm: str, event: str, subject: str, data: Mapping[str, object], now_ms: int
    ) -> None:
        await self._conn.execute(
            insert(t.audit).values(
                realm=realm,
                at_ms=now_ms,
                event=event,
                subject=subject,
                data=json.dumps(data, separators=(",", ":"), sort_keys=True),
            )
        )
