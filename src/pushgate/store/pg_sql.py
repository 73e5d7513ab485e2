"""The SQL text of the PostgreSQL adapter (`postgres.py`), built once at import from the
schema's own column lists (`schema.py`) and constants."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql

from pushgate.sessions.model import SessionStatus
from pushgate.store import schema as t
from pushgate.store.listen import FINISHED_CHANNEL
from pushgate.store.ports import EXPIRED_EVENT

PENDING = SessionStatus.PENDING.value


def columns(table: Table, alias: str, prefix: str = "") -> str:
    return ", ".join(f"{alias}.{c.name} AS {prefix}{c.name}" for c in table.columns)


NAMES = {table.name: [c.name for c in table.columns] for table in t.metadata.sorted_tables}


def split(record: asyncpg.Record, *tables: Table) -> list[dict[str, Any]]:
    """A joined row cut back into one mapping per table, by position: the SELECT lists each
    table's columns in schema order (`columns`), and slicing is ~10x cheaper than names."""
    values = tuple(record.values())
    parts, start = [], 0
    for table in tables:
        names = NAMES[table.name]
        parts.append(dict(zip(names, values[start : start + len(names)], strict=True)))
        start += len(names)
    return parts


def insert(table: Table, *, ignore_duplicate: bool = False) -> str:
    names = [c.name for c in table.columns if not (table is t.audit and c.name == "id")]
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders})"
    return sql + (" ON CONFLICT DO NOTHING" if ignore_duplicate else "")


def args(table: Table, values: Mapping[str, Any]) -> list[Any]:
    return [values[c.name] for c in table.columns if c.name in values]


GET_REALM = "SELECT * FROM realms WHERE name = $1"
GET_USER = "SELECT * FROM users WHERE realm = $1 AND username = $2"
FIND_API_KEY = "SELECT * FROM api_keys WHERE key_hash = $1"
GET_REGISTRATION = "SELECT * FROM registrations WHERE message_id = $1 AND realm = $2"
COMPLETE_REGISTRATION = (
    "UPDATE registrations SET completed_ms = $2"
    " WHERE message_id = $1 AND completed_ms IS NULL AND expires_ms > $2"
)
GET_DEVICE = (
    f"SELECT {columns(t.devices, 'd', 'd_')}, {columns(t.users, 'u', 'u_')}"
    " FROM devices d JOIN users u ON u.id = d.user_id"
    " WHERE d.realm = $1 AND d.mechanism_uid = $2"
)
ACTIVE_DEVICES = "SELECT * FROM devices WHERE user_id = $1 AND status = $2 ORDER BY created_ms, id"
UPDATE_DEVICE = (
    "UPDATE devices SET push_token = $2, device_type = $3, communication_type = $4,"
    " name = COALESCE($5, name), updated_ms = $6 WHERE id = $1"
)
GET_SESSION = "SELECT * FROM sessions WHERE id = $1 AND realm = $2"
# The compare-and-set and its NOTIFY in one round trip: a row comes back only if it won.
FINISH_SESSION = (
    "WITH won AS (UPDATE sessions SET status = $2, detail = COALESCE($3, detail),"
    " updated_ms = $4 WHERE id = $1 AND status = '" + PENDING + "'"
    " AND ($5 = false OR expires_ms > $4) RETURNING id)"
    f" SELECT pg_notify('{FINISHED_CHANNEL}', id) FROM won"
)
OPEN_NOTIFICATION = (
    f"SELECT {columns(t.notifications, 'n', 'n_')}, {columns(t.devices, 'd', 'd_')},"
    f" {columns(t.sessions, 's', 's_')}"
    " FROM notifications n JOIN devices d ON d.id = n.device_id"
    " JOIN sessions s ON s.id = n.session_id WHERE n.message_id = $1 AND s.realm = $2"
)
ANSWER_NOTIFICATION = (
    "UPDATE notifications SET answered_ms = $2 WHERE message_id = $1 AND answered_ms IS NULL"
)
# A CTE runs once (as an IN (...) subquery its LIMIT could apply per re-scan), and `= ANY`
# over its ids keeps the update on the primary key even in a generic plan, which otherwise
# hash-joins over a scan of every session ever made (benchmarks/scale.py).
EXPIRE_DUE = (
    f"WITH due AS (SELECT id FROM sessions WHERE status = '{PENDING}' AND expires_ms <= $1"
    " ORDER BY expires_ms LIMIT $3 FOR UPDATE SKIP LOCKED),"
    " x AS (UPDATE sessions SET status = $2, updated_ms = $1"
    f" WHERE id = ANY(ARRAY(SELECT id FROM due)) AND status = '{PENDING}'"
    " RETURNING id, realm),"
    " a AS (INSERT INTO audit (realm, at_ms, event, subject, data)"
    f" SELECT realm, $1, '{EXPIRED_EVENT}', id, '{{}}' FROM x)"
    " SELECT id, realm FROM x"
)
NOTIFY = f"SELECT pg_notify('{FINISHED_CHANNEL}', $1)"
# An answer in one statement (so it needs no BEGIN/COMMIT): the session's compare-and-set
# first; the notification and the audit row only if it won, and the NOTIFY with it. An answered
# notification always has a finished session, so the two cannot disagree.
RECORD_ANSWER = (
    "WITH s AS (UPDATE sessions SET status = $4, detail = COALESCE($5, detail), updated_ms = $2"
    f" WHERE id = $3 AND status = '{PENDING}' AND expires_ms > $2 RETURNING id, realm),"
    " n AS (UPDATE notifications SET answered_ms = $2"
    " WHERE message_id = $1 AND answered_ms IS NULL AND EXISTS (SELECT 1 FROM s)"
    " RETURNING message_id),"
    " a AS (INSERT INTO audit (realm, at_ms, event, subject, data)"
    " SELECT s.realm, $2, $6, s.id, $7 FROM s WHERE EXISTS (SELECT 1 FROM n))"
    f" SELECT pg_notify('{FINISHED_CHANNEL}', s.id), (SELECT count(*) FROM n) AS answered"
    " FROM s"
)


DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def unnest(table: Table, first: int) -> str:
    """`SELECT * FROM unnest($n::type[], ...)`: many rows of `table` in one parameter each."""
    casts = [
        f"${first + i}::{c.type.compile(dialect=DIALECT)}[]" for i, c in enumerate(table.columns)
    ]
    return f"SELECT * FROM unnest({', '.join(casts)})"


SESSION_COLUMNS = len(t.sessions.columns)
NOTIFICATION_COLUMNS = len(t.notifications.columns)
# A session, its notifications and its audit row: one statement, so atomic without BEGIN.
ADD_SESSION = (
    f"WITH s AS ({insert(t.sessions)}),"
    f" n AS (INSERT INTO notifications {unnest(t.notifications, SESSION_COLUMNS + 1)})"
    " INSERT INTO audit (realm, at_ms, event, subject, data) VALUES ("
    + ", ".join(f"${SESSION_COLUMNS + NOTIFICATION_COLUMNS + i}" for i in range(1, 6))
    + ")"
)
DEVICE_AND_PENDING = (
    f"SELECT {columns(t.devices, 'd', 'd_')}, {columns(t.users, 'u', 'u_')},"
    f" {columns(t.notifications, 'n', 'n_')}, {columns(t.sessions, 's', 's_')}"
    " FROM devices d JOIN users u ON u.id = d.user_id"
    " LEFT JOIN (notifications n JOIN sessions s ON s.id = n.session_id"
    f" AND s.status = '{PENDING}' AND s.expires_ms > $3)"
    " ON n.device_id = d.id AND n.answered_ms IS NULL"
    " WHERE d.realm = $1 AND d.mechanism_uid = $2"
    " ORDER BY n.created_ms, n.message_id LIMIT $4"
)
USER_AND_DEVICES = (
    f"SELECT {columns(t.users, 'u', 'u_')}, {columns(t.devices, 'd', 'd_')}"
    " FROM users u LEFT JOIN devices d ON d.user_id = u.id AND d.status = $3"
    " WHERE u.realm = $1 AND u.username = $2 ORDER BY d.created_ms, d.id"
)
