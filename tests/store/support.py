"""Builders and table readers shared by the store's contract tests (`test_store_*.py`):
models with fresh ids, a seeded user, device, session and notification, the adapter a URL
names, and reads of what a call wrote through a separate engine.
"""

from __future__ import annotations

import base64
import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import asyncpg
from sqlalchemy import Table, select

from pushgate.accounts.model import User
from pushgate.audit.model import AuditEntry
from pushgate.devices.model import Device, DeviceStatus
from pushgate.outbox.model import OutboxMessage
from pushgate.protocol.push_payload import PushType
from pushgate.sessions.machine import Event, Transition, transition
from pushgate.sessions.model import Content, Notification, PushSession, SessionStatus
from pushgate.store import schema
from pushgate.store.engine import create_engine, is_postgres, postgres_dsn
from pushgate.store.ports import Store
from pushgate.store.postgres.listen import FINISHED_CHANNEL
from pushgate.store.sealing import Sealer
from tests.support import TEST_SECRET_KEY

NOW = 1_790_000_000_000
LEASE = 30_000
KIND = "test.kind"


def open_store(url: str, key: bytes | None = None) -> Store:
    """The adapter the URL names, as wiring builds it."""
    sealer = Sealer(key or base64.b64decode(TEST_SECRET_KEY))
    if is_postgres(url):
        from pushgate.store.postgres import PostgresStore

        return PostgresStore(url, sealer, pool_size=4)
    from pushgate.store.sqlite import SqliteStore

    return SqliteStore(url, sealer)


async def table(url: str, which: Table, *where: Any) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.execute(select(which).where(*where))
            return [dict(row._mapping) for row in found]
    finally:
        await engine.dispose()


async def change(url: str, statement: Any) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(statement)
    finally:
        await engine.dispose()


# models -------------------------------------------------------------------------------------


def new_user(realm: str = "/", name: str = "alice") -> User:
    return User(str(uuid.uuid4()), realm, name, None, NOW)


def new_device(user: User, mechanism_uid: str = "mech-1", created_ms: int = NOW) -> Device:
    return Device(
        id=str(uuid.uuid4()),
        realm=user.realm,
        user_id=user.id,
        mechanism_uid=mechanism_uid,
        secret=b"s" * 32,
        push_token="token-abcdef",
        device_type="android",
        communication_type="gcm",
        name="Pixel",
        status=DeviceStatus.ACTIVE,
        created_ms=created_ms,
        updated_ms=created_ms,
    )


def new_session(user: User, expires_ms: int = NOW + 60_000, count: int = 1) -> PushSession:
    return PushSession(
        id=str(uuid.uuid4()),
        realm=user.realm,
        username=user.username,
        user_id=user.id,
        status=SessionStatus.PENDING,
        content=Content("Sign in", "sub", "body", '{"k":1}'),
        push_type=PushType.CHALLENGE,
        notification_count=count,
        detail=None,
        created_ms=NOW,
        expires_ms=expires_ms,
        updated_ms=NOW,
    )


def new_notification(session: PushSession, device: Device, created_ms: int = NOW) -> Notification:
    return Notification(
        message_id=f"AUTHENTICATE:{uuid.uuid4()}{created_ms}",
        session_id=session.id,
        device_id=device.id,
        challenge=b"c" * 32,
        numbers=(12, 34, 56),
        answer=34,
        created_ms=created_ms,
    )


def created(session: PushSession) -> AuditEntry:
    return AuditEntry(session.realm, "test.created", session.id, session.created_ms, {"n": 1})


def message(key: str, kind: str = KIND, **fields: Any) -> OutboxMessage:
    return OutboxMessage(kind, "/", key, {"key": key}, **fields)


def followed(session: PushSession, event: Event, now: int, **kw: Any) -> Transition:
    """The machine's transition with one outbox row, as a follower would add it."""
    move = transition(session, event, now, **kw)
    return dataclasses.replace(move, outbox=(message(f"{session.id}:{event}"),))


async def seed(store: Store) -> tuple[User, Device, PushSession, Notification]:
    user = new_user()
    device = new_device(user)
    session = new_session(user)
    notification = new_notification(session, device)
    async with store.transaction() as tx:
        assert await tx.accounts.add_user(user)
        assert await tx.devices.add(device)
        await tx.sessions.add(session, [notification], created(session))
    return user, device, session, notification


async def audit_events(url: str, subject: str) -> list[str]:
    return [r["event"] for r in await table(url, schema.audit, schema.audit.c.subject == subject)]


async def outbox_keys(url: str) -> list[str]:
    return sorted(r["idempotency_key"] for r in await table(url, schema.outbox))


def sweeper_expiry(now: int) -> Callable[[PushSession], Transition]:
    """An expiry whose audit event and outbox rows are the caller's own, not the store's."""

    def expire(session: PushSession) -> Transition:
        move = transition(session, Event.EXPIRE, now)
        return dataclasses.replace(
            move,
            audit=dataclasses.replace(move.audit, event="test.swept"),
            outbox=(message(f"{session.id}:expired"),),
        )

    return expire


# waiting on another process -----------------------------------------------------------------


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    with anyio.fail_after(seconds):
        while not condition():
            await anyio.sleep(0.02)


async def probe_until_heard(url: str, heard: list[str], seconds: float = 10.0) -> None:
    """NOTIFY a probe until the listener hears one: before it is connected, nothing is."""
    conn = await asyncpg.connect(postgres_dsn(url))
    try:
        with anyio.fail_after(seconds):
            while "probe" not in heard:
                await conn.execute("SELECT pg_notify($1, 'probe')", FINISHED_CHANNEL)
                await anyio.sleep(0.05)
    finally:
        await conn.close()
    heard.clear()
