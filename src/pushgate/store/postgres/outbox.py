"""The transactional outbox on PostgreSQL (`outbox/ports.py`, DESIGN.md "scale-out").

Claims are one statement: the due rows are locked with `FOR UPDATE SKIP LOCKED` (a row another
worker is claiming right now is skipped, not waited for) and leased in the same statement, so
no two workers hold one row, and a lease that runs out frees the row for the next claim.
Finishing a row is a compare-and-set on its lease: a worker whose lease was taken over
changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from pushgate.outbox.model import MAX_ERROR, OutboxMessage, OutboxRow, OutboxState
from pushgate.outbox.ports import Outbox, OutboxStats
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.postgres.sql import Db, arrays, columns, insert_outbox, updated_one

PENDING = OutboxState.PENDING.value
DONE = OutboxState.DONE.value
DEAD = OutboxState.DEAD.value
ROW = columns(t.outbox, "outbox")

ADD = insert_outbox(1)
# The CTE runs once and `= ANY(ARRAY(...))` keeps the UPDATE on the primary key whatever plan
# is cached (the same shape as the sessions' expiry).
# `finished` marks the worker's last batch done in the same statement; its rows are leased to
# the worker, so `due` (free rows only) never sees them.
CLAIM = (
    f"WITH finished AS (UPDATE outbox SET state = '{DONE}', lease_owner = NULL,"
    " lease_until_ms = NULL, updated_ms = $1 WHERE id = ANY($6::bigint[]) AND lease_owner = $4"
    f" AND state = '{PENDING}'),"
    " due AS (SELECT id FROM outbox"
    f" WHERE state = '{PENDING}' AND next_attempt_ms <= $1"
    " AND (lease_until_ms IS NULL OR lease_until_ms <= $1) AND kind = ANY($2::text[])"
    " ORDER BY next_attempt_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED)"
    " UPDATE outbox SET lease_owner = $4, lease_until_ms = $1 + $5, attempts = attempts + 1,"
    " updated_ms = $1 WHERE id = ANY(ARRAY(SELECT id FROM due))"
    f" RETURNING {ROW}"
)
# $1 id, $2 owner, $3 now: the lease must still be this owner's.
_HELD = f" WHERE id = $1 AND lease_owner = $2 AND state = '{PENDING}'"
_RELEASE = "lease_owner = NULL, lease_until_ms = NULL, updated_ms = $3"
COMPLETE = f"UPDATE outbox SET state = '{DONE}', {_RELEASE}{_HELD}"
COMPLETE_MANY = (
    f"UPDATE outbox SET state = '{DONE}', {_RELEASE}"
    f" WHERE id = ANY($1::bigint[]) AND lease_owner = $2 AND state = '{PENDING}'"
)
RETRY = f"UPDATE outbox SET next_attempt_ms = $4, last_error = $5, {_RELEASE}{_HELD}"
BURY = f"UPDATE outbox SET state = '{DEAD}', last_error = $4, {_RELEASE}{_HELD}"
GET = f"SELECT {ROW} FROM outbox WHERE id = $1"
# Only pending and dead rows: the done ones, which grow without end, stay out of the index
# range (state, next_attempt_ms) this reads.
STATS = (
    f"SELECT count(*) FILTER (WHERE state = '{PENDING}'),"
    f" count(*) FILTER (WHERE state = '{DEAD}'),"
    f" min(next_attempt_ms) FILTER (WHERE state = '{PENDING}')"
    f" FROM outbox WHERE state IN ('{PENDING}', '{DEAD}')"
)


def outbox_arrays(messages: Sequence[OutboxMessage], now_ms: int) -> list[list[object]]:
    """The array parameters of `insert_outbox`."""
    return arrays(t.outbox, (rows.outbox_values(m, now_ms) for m in messages))


class PostgresOutbox(Outbox):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def add(self, messages: Sequence[OutboxMessage], now_ms: int) -> None:
        if messages:
            await self._db.execute(ADD, *outbox_arrays(messages, now_ms))

    async def claim(
        self,
        kinds: Sequence[str],
        owner: str,
        now_ms: int,
        lease_ms: int,
        limit: int,
        done: Sequence[int] = (),
    ) -> Sequence[OutboxRow]:
        if not kinds or limit <= 0:
            await self.complete_many(done, owner, now_ms)
            return []
        found = await self._db.fetch(CLAIM, now_ms, list(kinds), limit, owner, lease_ms, list(done))
        claimed = [rows.outbox_row(row) for row in found]
        # RETURNING keeps no order; the port promises the oldest due first.
        claimed.sort(key=lambda row: (row.next_attempt_ms, row.id))
        return claimed

    async def complete(self, row_id: int, owner: str, now_ms: int) -> bool:
        return updated_one(await self._db.execute(COMPLETE, row_id, owner, now_ms))

    async def complete_many(self, row_ids: Sequence[int], owner: str, now_ms: int) -> None:
        if row_ids:
            await self._db.execute(COMPLETE_MANY, list(row_ids), owner, now_ms)

    async def retry(
        self, row_id: int, owner: str, now_ms: int, next_attempt_ms: int, error: str
    ) -> bool:
        status = await self._db.execute(
            RETRY, row_id, owner, now_ms, next_attempt_ms, error[:MAX_ERROR]
        )
        return updated_one(status)

    async def bury(self, row_id: int, owner: str, now_ms: int, error: str) -> bool:
        return updated_one(await self._db.execute(BURY, row_id, owner, now_ms, error[:MAX_ERROR]))

    async def get(self, row_id: int) -> OutboxRow | None:
        row = await self._db.fetchrow(GET, row_id)
        return rows.outbox_row(row) if row else None

    async def stats(self, now_ms: int) -> OutboxStats:
        row = await self._db.fetchrow(STATS)
        assert row is not None  # an aggregate always has its one row
        pending, dead, oldest = row.values()
        return OutboxStats(pending=pending, dead=dead, oldest_due_ms=oldest)
