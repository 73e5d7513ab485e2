"""The retention purge on PostgreSQL (`retention/ports.py`): each kind of row found on the
index of its time column (migration 0009), at most `limit` per statement, `SKIP LOCKED` so
that purges on several nodes, and the traffic, never queue on one another's rows."""

from __future__ import annotations

from collections.abc import Sequence

from pushgate.accounts.model import Realm
from pushgate.retention.model import Cutoffs, PurgeCounts
from pushgate.store import rows
from pushgate.store.postgres.sql import Db

# The literal `<> 'PENDING'` / `<> 'pending'` is what lets the planner use the partial indexes.
_FINISHED = "realm = $1 AND status <> 'PENDING' AND updated_ms < $2"
_SETTLED = "realm = $1 AND state <> 'pending' AND updated_ms < $2"

COUNTS = (
    f"SELECT (SELECT count(*) FROM sessions WHERE {_FINISHED}) AS sessions,"
    " (SELECT count(*) FROM notifications WHERE session_id IN"
    f" (SELECT id FROM sessions WHERE {_FINISHED})) AS notifications,"
    " (SELECT count(*) FROM registrations WHERE realm = $1 AND expires_ms < $2)"
    " AS registrations,"
    " (SELECT count(*) FROM outbox WHERE realm = $1 AND state <> 'pending'"
    " AND updated_ms < $3) AS outbox,"
    " (SELECT count(*) FROM audit WHERE realm = $1 AND at_ms < $4) AS audit"
)
# Children first, in the same transaction: notifications refer to their session.
DOOMED_SESSIONS = (
    f"WITH doomed AS (SELECT id FROM sessions WHERE {_FINISHED}"
    " ORDER BY updated_ms LIMIT $3 FOR UPDATE SKIP LOCKED),"
    " n AS (DELETE FROM notifications WHERE session_id IN (SELECT id FROM doomed) RETURNING 1)"
    " SELECT (SELECT count(*) FROM n) AS notifications,"
    " (SELECT array_agg(id) FROM doomed) AS ids"
)
DELETE_SESSIONS = "DELETE FROM sessions WHERE id = ANY($1::varchar[])"
DELETE_REGISTRATIONS = (
    "WITH d AS (DELETE FROM registrations WHERE message_id IN (SELECT message_id"
    " FROM registrations WHERE realm = $1 AND expires_ms < $2 ORDER BY expires_ms LIMIT $3"
    " FOR UPDATE SKIP LOCKED) RETURNING 1) SELECT count(*) FROM d"
)
DELETE_OUTBOX = (
    f"WITH d AS (DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE {_SETTLED}"
    " ORDER BY updated_ms LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING 1) SELECT count(*) FROM d"
)
# The only DELETE on the audit table: the trail is append-only otherwise.
DELETE_AUDIT = (
    "WITH d AS (DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE realm = $1"
    " AND at_ms < $2 ORDER BY at_ms LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING 1)"
    " SELECT count(*) FROM d"
)
COUNT_KEYS = "SELECT count(*) FROM idempotency_keys WHERE created_ms < $1"
DELETE_KEYS = (
    "WITH d AS (DELETE FROM idempotency_keys WHERE (realm, key) IN (SELECT realm, key"
    " FROM idempotency_keys WHERE created_ms < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"
    " RETURNING 1) SELECT count(*) FROM d"
)


class PostgresRetention:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def realms(self) -> Sequence[Realm]:
        return [rows.realm(r) for r in await self._db.fetch("SELECT * FROM realms")]

    async def count(self, cutoffs: Cutoffs) -> PurgeCounts:
        c = cutoffs
        row = await self._db.fetchrow(COUNTS, c.realm, c.sessions_ms, c.outbox_ms, c.audit_ms)
        assert row is not None  # a SELECT of scalars has its one row
        return PurgeCounts(
            row["sessions"], row["notifications"], row["registrations"], row["outbox"], row["audit"]
        )

    async def purge(self, cutoffs: Cutoffs, limit: int) -> PurgeCounts:
        c = cutoffs
        async with self._db.atomic():
            doomed = await self._db.fetchrow(DOOMED_SESSIONS, c.realm, c.sessions_ms, limit)
            assert doomed is not None
            ids = doomed["ids"] or []
            if ids:
                await self._db.execute(DELETE_SESSIONS, ids)
        registrations = await self._count(DELETE_REGISTRATIONS, c.realm, c.sessions_ms, limit)
        outbox = await self._count(DELETE_OUTBOX, c.realm, c.outbox_ms, limit)
        audit = await self._count(DELETE_AUDIT, c.realm, c.audit_ms, limit)
        return PurgeCounts(len(ids), doomed["notifications"], registrations, outbox, audit)

    async def _count(self, sql: str, *args: object) -> int:
        row = await self._db.fetchrow(sql, *args)
        return int(row[0]) if row is not None else 0

    async def count_idempotency_keys(self, before_ms: int) -> int:
        return await self._count(COUNT_KEYS, before_ms)

    async def purge_idempotency_keys(self, before_ms: int, limit: int) -> int:
        return await self._count(DELETE_KEYS, before_ms, limit)
