"""Login sessions and consumed journey steps on SQLite (`logins/ports.py`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pushgate.logins.model import Login
from pushgate.store.sqlite.connection import Db

_COLUMNS = "realm, user_id, username, tree, created_ms, expires_ms"


def _login(row: Sequence[object]) -> Login:
    realm, user_id, username, tree, created, expires = row
    return Login(str(realm), str(user_id), str(username), str(tree), int(created), int(expires))  # type: ignore[call-overload]


class SqliteLogins:
    def __init__(self, db: Db) -> None:
        self._db = db

    _ADD = (
        f"INSERT INTO login_sessions (digest, {_COLUMNS})"  # noqa: S608
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    )

    async def add(self, digest: str, login: Login) -> None:
        params = (digest, login.realm, login.user_id, login.username, login.tree)
        times = (login.created_ms, login.expires_ms)
        await self._db.write(lambda c: c.execute(self._ADD, (*params, *times)))

    _GET = f"SELECT {_COLUMNS} FROM login_sessions WHERE digest = ?1"  # noqa: S608

    async def get(self, digest: str) -> Login | None:
        found = await self._db.fetch(self._GET, (digest,))
        return _login(found[0]) if found else None

    _DELETE = f"DELETE FROM login_sessions WHERE digest = ?1 RETURNING {_COLUMNS}"  # noqa: S608

    async def delete(self, digest: str) -> Login | None:
        def work(c: sqlite3.Connection) -> Login | None:
            row = c.execute(self._DELETE, (digest,)).fetchone()
            return _login(row) if row else None

        return await self._db.write(work)

    async def purge(self, now_ms: int) -> int:
        def work(c: sqlite3.Connection) -> int:
            sessions = c.execute("DELETE FROM login_sessions WHERE expires_ms <= ?1", (now_ms,))
            steps = c.execute("DELETE FROM journey_steps WHERE expires_ms <= ?1", (now_ms,))
            return sessions.rowcount + steps.rowcount

        return await self._db.write(work)

    _CONSUME = (
        "INSERT INTO journey_steps (step_id, expires_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING"
    )

    async def consume_step(self, step_id: str, expires_ms: int) -> bool:
        def work(c: sqlite3.Connection) -> bool:
            return c.execute(self._CONSUME, (step_id, expires_ms)).rowcount == 1

        return await self._db.write(work)
