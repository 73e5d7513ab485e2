"""Rows of every kind the purge looks at, old and recent, written straight into the tables
with the times a test needs (the services would stamp them with the clock's now)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from sqlalchemy import func, insert, select

from pushgate.retention.model import DAY_MS
from pushgate.store import schema
from pushgate.store.engine import create_engine
from pushgate.store.sealing import Sealer
from tests.support import TEST_SECRET_KEY

SEALER = Sealer(base64.b64decode(TEST_SECRET_KEY))


async def write(url: str, table: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(table), rows)
    finally:
        await engine.dispose()


async def count(url: str, table: Any, *where: Any) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(select(func.count()).select_from(table).where(*where))
            return int(found or 0)
    finally:
        await engine.dispose()


class Seeder:
    """Writes sessions, notifications, registrations, outbox and audit rows `days_ago` old."""

    def __init__(self, url: str, now_ms: int, realm: str = "/") -> None:
        self.url = url
        self.now = now_ms
        self.realm = realm
        self.user_id = str(uuid.uuid4())
        self.device_id = str(uuid.uuid4())

    def at(self, days_ago: float) -> int:
        return self.now - int(days_ago * DAY_MS)

    async def user_and_device(self) -> None:
        await write(
            self.url,
            schema.users,
            [
                {
                    "id": self.user_id,
                    "realm": self.realm,
                    "username": f"u-{self.user_id[:8]}",
                    "created_ms": self.at(400),
                }
            ],
        )
        await write(
            self.url,
            schema.devices,
            [
                {
                    "id": self.device_id,
                    "realm": self.realm,
                    "user_id": self.user_id,
                    "mechanism_uid": str(uuid.uuid4()),
                    "secret": SEALER.seal(b"s" * 32, f"devices/{self.device_id}"),
                    "push_token": "t",
                    "device_type": "android",
                    "communication_type": "gcm",
                    "name": "Pixel",
                    "status": "active",
                    "created_ms": self.at(400),
                    "updated_ms": self.at(400),
                }
            ],
        )

    async def sessions(
        self, days_ago: float, status: str, count: int = 1, notes: int = 2
    ) -> list[str]:
        ids = [str(uuid.uuid4()) for _ in range(count)]
        at = self.at(days_ago)
        await write(
            self.url,
            schema.sessions,
            [
                {
                    "id": i,
                    "realm": self.realm,
                    "username": "alice",
                    "user_id": self.user_id,
                    "status": status,
                    "title": "Sign in",
                    "push_type": "default",
                    "notification_count": notes,
                    "created_ms": at - 1000,
                    "expires_ms": at + 60_000,
                    "updated_ms": at,
                }
                for i in ids
            ],
        )
        await write(
            self.url,
            schema.notifications,
            [
                {
                    "message_id": f"AUTHENTICATE:{uuid.uuid4()}",
                    "session_id": i,
                    "device_id": self.device_id,
                    "challenge": b"c" * 32,
                    "created_ms": at - 1000,
                }
                for i in ids
                for _ in range(notes)
            ],
        )
        return ids

    async def outbox(self, days_ago: float, state: str, count: int = 1) -> None:
        at = self.at(days_ago)
        await write(
            self.url,
            schema.outbox,
            [
                {
                    "kind": "test.kind",
                    "realm": self.realm,
                    "idempotency_key": str(uuid.uuid4()),
                    "payload": "{}",
                    "state": state,
                    "attempts": 1,
                    "next_attempt_ms": at,
                    "created_ms": at,
                    "updated_ms": at,
                }
                for _ in range(count)
            ],
        )

    async def audit(self, days_ago: float, count: int = 1) -> None:
        at = self.at(days_ago)
        await write(
            self.url,
            schema.audit,
            [
                {
                    "realm": self.realm,
                    "at_ms": at,
                    "event": "test.event",
                    "subject": "s",
                    "data": "{}",
                }
                for _ in range(count)
            ],
        )

    async def registrations(self, days_ago: float, count: int = 1) -> None:
        at = self.at(days_ago)
        ids = [f"REGISTER:{uuid.uuid4()}" for _ in range(count)]
        await write(
            self.url,
            schema.registrations,
            [
                {
                    "message_id": message_id,
                    "realm": self.realm,
                    "user_id": self.user_id,
                    "device_id": str(uuid.uuid4()),
                    "secret": SEALER.seal(b"s" * 32, f"registrations/{message_id}"),
                    "challenge": b"c" * 32,
                    "created_ms": at - 300_000,
                    "expires_ms": at,
                }
                for message_id in ids
            ],
        )

    async def idempotency_keys(self, days_ago: float, count: int = 1) -> None:
        at = self.at(days_ago)
        await write(
            self.url,
            schema.idempotency_keys,
            [
                {
                    "realm": self.realm,
                    "key": str(uuid.uuid4()),
                    "request_hash": "h" * 64,
                    "session_id": str(uuid.uuid4()),
                    "created_ms": at,
                }
                for _ in range(count)
            ],
        )
