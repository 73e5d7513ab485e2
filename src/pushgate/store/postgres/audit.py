"""The audit trail on PostgreSQL (`audit/ports.py`). The entries of session changes are written
by the statements of `sessions.py`, in the same statement as the change."""

from __future__ import annotations

from typing import Any

from pushgate.audit.model import AuditEntry
from pushgate.audit.ports import AuditLog
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.postgres.sql import AUDIT_COLUMNS, Db, insert

APPEND = insert(t.audit)


def audit_args(entry: AuditEntry) -> list[Any]:
    """The values of one audit row, in `AUDIT_COLUMNS` order."""
    values = rows.audit_values(entry)
    return [values[name] for name in AUDIT_COLUMNS]


class PostgresAuditLog(AuditLog):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def append(self, entry: AuditEntry) -> None:
        await self._db.execute(APPEND, *audit_args(entry))
