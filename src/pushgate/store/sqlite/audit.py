"""The audit trail on SQLite (`audit/ports.py`): one row per entry, numbered by the database;
reads page through `ix_audit_at` / `ix_audit_realm_at` or the primary key."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pushgate.audit.model import AuditEntry, AuditQuery, AuditRecord
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.sqlite.columns import Insert, Select
from pushgate.store.sqlite.connection import Db

_INSERT = Insert(t.audit, without=("id",))
# A realm's rows go through `ix_audit_realm_at`, all rows through the primary key or `ix_audit_at`:
# two statements, because `? IS NULL OR` would keep SQLite from choosing the realm's index.
_NEWEST_IN = Select(
    "SELECT {a} FROM audit a WHERE a.realm = ? ORDER BY a.at_ms DESC, a.id DESC LIMIT ?",
    a=t.audit,
)
_NEWEST_ALL = Select("SELECT {a} FROM audit a ORDER BY a.at_ms DESC, a.id DESC LIMIT ?", a=t.audit)
_AFTER_IN = Select(
    "SELECT {a} FROM audit a WHERE a.id > ? AND a.realm = ? ORDER BY a.id LIMIT ?", a=t.audit
)
_AFTER_ALL = Select("SELECT {a} FROM audit a WHERE a.id > ? ORDER BY a.id LIMIT ?", a=t.audit)
_WINDOW = "(a.at_ms, a.id) > (?, ?) AND a.at_ms < ?"
_WINDOW_IN = Select(
    f"SELECT {{a}} FROM audit a WHERE a.realm = ? AND {_WINDOW}"  # noqa: S608 - constants
    " ORDER BY a.at_ms, a.id LIMIT ?",
    a=t.audit,
)
_WINDOW_ALL = Select(
    f"SELECT {{a}} FROM audit a WHERE {_WINDOW} ORDER BY a.at_ms, a.id LIMIT ?",  # noqa: S608
    a=t.audit,
)
_FAR_PAST = -(2**63)
_FAR_FUTURE = 2**63 - 1


def append(conn: sqlite3.Connection, entry: AuditEntry) -> None:
    """Inside a write of the caller's, so that a transition's entry commits with it."""
    conn.execute(_INSERT.sql, _INSERT.params(rows.audit_values(entry)))


class SqliteAuditLog:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def append(self, entry: AuditEntry) -> None:
        await self._db.write(lambda conn: append(conn, entry))

    async def _records(self, select: Select, *params: object) -> list[AuditRecord]:
        found = await self._db.fetch(select.sql, params)
        return [rows.audit_record(select.record(row)) for row in found]

    async def newest(self, realm: str | None, limit: int) -> Sequence[AuditRecord]:
        if realm is None:
            found = await self._records(_NEWEST_ALL, limit)
        else:
            found = await self._records(_NEWEST_IN, realm, limit)
        return found[::-1]

    async def after_id(self, after_id: int, realm: str | None, limit: int) -> Sequence[AuditRecord]:
        if realm is None:
            return await self._records(_AFTER_ALL, after_id, limit)
        return await self._records(_AFTER_IN, after_id, realm, limit)

    async def window(
        self, query: AuditQuery, after: tuple[int, int] | None, limit: int
    ) -> Sequence[AuditRecord]:
        at, last = after if after is not None else (_start(query), -1)
        until = _FAR_FUTURE if query.until_ms is None else query.until_ms
        if query.realm is None:
            return await self._records(_WINDOW_ALL, at, last, until, limit)
        return await self._records(_WINDOW_IN, query.realm, at, last, until, limit)


def _start(query: AuditQuery) -> int:
    # (since, -1) < (since, any id): the window starts at `since` itself.
    return _FAR_PAST if query.since_ms is None else query.since_ms
