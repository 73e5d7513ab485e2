"""The retention purge on SQLite (`retention/ports.py`): each kind of row found on the index
of its time column (migration 0009), at most `limit` per statement, each kind in its own
BEGIN IMMEDIATE … COMMIT so that the write lock is held for one small batch at a time."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pushgate.accounts.model import Realm
from pushgate.retention.model import Cutoffs, PurgeCounts
from pushgate.store import rows
from pushgate.store.sqlite.connection import Db

# The literal `<> 'PENDING'` / `<> 'pending'` is what lets SQLite use the partial indexes.
_FINISHED = "realm = ? AND status <> 'PENDING' AND updated_ms < ?"
_SETTLED = "realm = ? AND state <> 'pending' AND updated_ms < ?"
_OLD_AUDIT = "realm = ? AND at_ms < ?"
_PAST_DEADLINE = "realm = ? AND expires_ms < ?"

_COUNTS = (
    f"SELECT (SELECT count(*) FROM sessions WHERE {_FINISHED}),"  # noqa: S608 - constants
    " (SELECT count(*) FROM notifications WHERE session_id IN"
    f" (SELECT id FROM sessions WHERE {_FINISHED})),"
    f" (SELECT count(*) FROM registrations WHERE {_PAST_DEADLINE}),"
    f" (SELECT count(*) FROM outbox WHERE {_SETTLED}),"
    f" (SELECT count(*) FROM audit WHERE {_OLD_AUDIT})"
)
_DOOMED_SESSIONS = f"SELECT id FROM sessions WHERE {_FINISHED} ORDER BY updated_ms LIMIT ?"  # noqa: S608
_DELETE_REGISTRATIONS = (
    "DELETE FROM registrations WHERE message_id IN (SELECT message_id FROM registrations"  # noqa: S608
    f" WHERE {_PAST_DEADLINE} ORDER BY expires_ms LIMIT ?)"
)
_DELETE_OUTBOX = (
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"  # noqa: S608
    f" WHERE {_SETTLED} ORDER BY updated_ms LIMIT ?)"
)
# The only DELETE on the audit table: the trail is append-only otherwise.
_DELETE_AUDIT = (
    "DELETE FROM audit WHERE id IN (SELECT id FROM audit"  # noqa: S608
    f" WHERE {_OLD_AUDIT} ORDER BY at_ms LIMIT ?)"
)
_COUNT_KEYS = "SELECT count(*) FROM idempotency_keys WHERE created_ms < ?"
_DELETE_KEYS = (
    "DELETE FROM idempotency_keys WHERE rowid IN"
    " (SELECT rowid FROM idempotency_keys WHERE created_ms < ? LIMIT ?)"
)


def _purge_sessions(conn: sqlite3.Connection, c: Cutoffs, limit: int) -> tuple[int, int]:
    ids = [r[0] for r in conn.execute(_DOOMED_SESSIONS, (c.realm, c.sessions_ms, limit))]
    if not ids:
        return 0, 0
    marks = ", ".join("?" * len(ids))
    # Children first: notifications refer to their session.
    notes = conn.execute(
        f"DELETE FROM notifications WHERE session_id IN ({marks})",  # noqa: S608 - marks only
        ids,
    ).rowcount
    went = conn.execute(f"DELETE FROM sessions WHERE id IN ({marks})", ids).rowcount  # noqa: S608
    return went, notes


class SqliteRetention:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def realms(self) -> Sequence[Realm]:
        found = await self._db.fetch("SELECT name, created_ms, settings FROM realms")
        return [rows.realm({"name": n, "created_ms": c, "settings": s}) for n, c, s in found]

    async def count(self, cutoffs: Cutoffs) -> PurgeCounts:
        c = cutoffs
        params = (
            c.realm,
            c.sessions_ms,
            c.realm,
            c.sessions_ms,
            c.realm,
            c.sessions_ms,
            c.realm,
            c.outbox_ms,
            c.realm,
            c.audit_ms,
        )
        (found,) = await self._db.fetch(_COUNTS, params)
        sessions, notifications, registrations, outbox, audit = found
        return PurgeCounts(sessions, notifications, registrations, outbox, audit)

    async def purge(self, cutoffs: Cutoffs, limit: int) -> PurgeCounts:
        c = cutoffs
        sessions, notifications = await self._db.write(lambda conn: _purge_sessions(conn, c, limit))
        registrations = await self._deleted(_DELETE_REGISTRATIONS, c.realm, c.sessions_ms, limit)
        outbox = await self._deleted(_DELETE_OUTBOX, c.realm, c.outbox_ms, limit)
        audit = await self._deleted(_DELETE_AUDIT, c.realm, c.audit_ms, limit)
        return PurgeCounts(sessions, notifications, registrations, outbox, audit)

    async def _deleted(self, sql: str, *params: object) -> int:
        count: int = await self._db.write(lambda conn: conn.execute(sql, params).rowcount)
        return count

    async def count_idempotency_keys(self, before_ms: int) -> int:
        (found,) = await self._db.fetch(_COUNT_KEYS, (before_ms,))
        return int(found[0])

    async def purge_idempotency_keys(self, before_ms: int, limit: int) -> int:
        return await self._deleted(_DELETE_KEYS, before_ms, limit)
