"""The audit trail on SQLite (`audit/ports.py`): one row per entry, numbered by the database."""

from __future__ import annotations

import sqlite3

from pushgate.audit.model import AuditEntry
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.sqlite.columns import Insert
from pushgate.store.sqlite.connection import Db

_INSERT = Insert(t.audit, without=("id",))


def append(conn: sqlite3.Connection, entry: AuditEntry) -> None:
    """Inside a write of the caller's, so that a transition's entry commits with it."""
    conn.execute(_INSERT.sql, _INSERT.params(rows.audit_values(entry)))


class SqliteAuditLog:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def append(self, entry: AuditEntry) -> None:
        await self._db.write(lambda conn: append(conn, entry))
