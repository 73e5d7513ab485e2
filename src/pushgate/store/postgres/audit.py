"""The audit trail on PostgreSQL (`audit/ports.py`). The entries of session changes are written
by the statements of `sessions.py`, in the same statement as the change. Reads page through
`ix_audit_at` / `ix_audit_realm_at` or the primary key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pushgate.audit.model import AuditEntry, AuditQuery, AuditRecord
from pushgate.audit.ports import AuditLog
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.postgres.sql import AUDIT_COLUMNS, Db, columns, insert

APPEND = insert(t.audit)
_ALL = columns(t.audit, "a")
# One statement per shape, so that each plan uses its index (a `$1 IS NULL OR` would not).
_NEWEST_IN = (
    f"SELECT {_ALL} FROM audit a WHERE a.realm = $1 ORDER BY a.at_ms DESC, a.id DESC LIMIT $2"
)
_NEWEST_ALL = f"SELECT {_ALL} FROM audit a ORDER BY a.at_ms DESC, a.id DESC LIMIT $1"
_AFTER_IN = f"SELECT {_ALL} FROM audit a WHERE a.id > $1 AND a.realm = $2 ORDER BY a.id LIMIT $3"
_AFTER_ALL = f"SELECT {_ALL} FROM audit a WHERE a.id > $1 ORDER BY a.id LIMIT $2"
_WINDOW_IN = (
    f"SELECT {_ALL} FROM audit a WHERE a.realm = $1"
    " AND (a.at_ms, a.id) > ($2, $3) AND a.at_ms < $4 ORDER BY a.at_ms, a.id LIMIT $5"
)
_WINDOW_ALL = (
    f"SELECT {_ALL} FROM audit a WHERE (a.at_ms, a.id) > ($1, $2)"
    " AND a.at_ms < $3 ORDER BY a.at_ms, a.id LIMIT $4"
)
_FAR_PAST = -(2**63)
_FAR_FUTURE = 2**63 - 1


def audit_args(entry: AuditEntry) -> list[Any]:
    """The values of one audit row, in `AUDIT_COLUMNS` order."""
    values = rows.audit_values(entry)
    return [values[name] for name in AUDIT_COLUMNS]


class PostgresAuditLog(AuditLog):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def append(self, entry: AuditEntry) -> None:
        await self._db.execute(APPEND, *audit_args(entry))

    async def _records(self, sql: str, *args: Any) -> list[AuditRecord]:
        return [rows.audit_record(row) for row in await self._db.fetch(sql, *args)]

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
        if after is not None:
            at, last = after
        else:  # (since, -1) comes before every row at `since`
            at, last = (_FAR_PAST if query.since_ms is None else query.since_ms), -1
        until = _FAR_FUTURE if query.until_ms is None else query.until_ms
        if query.realm is None:
            return await self._records(_WINDOW_ALL, at, last, until, limit)
        return await self._records(_WINDOW_IN, query.realm, at, last, until, limit)
