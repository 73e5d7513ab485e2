"""Login sessions and consumed journey steps on PostgreSQL (`logins/ports.py`)."""

from __future__ import annotations

import asyncpg

from pushgate.logins.model import Login
from pushgate.logins.ports import Logins
from pushgate.store.postgres.sql import Db, updated_one

_COLUMNS = "realm, user_id, username, tree, created_ms, expires_ms"
ADD = f"INSERT INTO login_sessions (digest, {_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
GET = f"SELECT {_COLUMNS} FROM login_sessions WHERE digest = $1"
DELETE = f"DELETE FROM login_sessions WHERE digest = $1 RETURNING {_COLUMNS}"
# One statement for both tables: one round trip.
PURGE = (
    "WITH s AS (DELETE FROM login_sessions WHERE expires_ms <= $1 RETURNING 1),"
    " j AS (DELETE FROM journey_steps WHERE expires_ms <= $1 RETURNING 1)"
    " SELECT (SELECT count(*) FROM s) + (SELECT count(*) FROM j)"
)
CONSUME = "INSERT INTO journey_steps (step_id, expires_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING"


def _login(row: asyncpg.Record) -> Login:
    return Login(
        row["realm"],
        row["user_id"],
        row["username"],
        row["tree"],
        row["created_ms"],
        row["expires_ms"],
    )


class PostgresLogins(Logins):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def add(self, digest: str, login: Login) -> None:
        await self._db.execute(
            ADD,
            digest,
            login.realm,
            login.user_id,
            login.username,
            login.tree,
            login.created_ms,
            login.expires_ms,
        )

    async def get(self, digest: str) -> Login | None:
        row = await self._db.fetchrow(GET, digest)
        return _login(row) if row else None

    async def delete(self, digest: str) -> Login | None:
        row = await self._db.fetchrow(DELETE, digest)
        return _login(row) if row else None

    async def purge(self, now_ms: int) -> int:
        row = await self._db.fetchrow(PURGE, now_ms)
        assert row is not None  # a SELECT of aggregates always has its one row
        count: int = row[0]
        return count

    async def consume_step(self, step_id: str, expires_ms: int) -> bool:
        return updated_one(await self._db.execute(CONSUME, step_id, expires_ms))
