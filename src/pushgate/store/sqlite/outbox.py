"""The transactional outbox on SQLite (`outbox/ports.py`).

A claim is one UPDATE … RETURNING inside BEGIN IMMEDIATE: with one writer at a time on the
file, the rows it selects cannot be leased by anyone else before it marks them, which is what
`FOR UPDATE SKIP LOCKED` gives on PostgreSQL. `complete`, `retry` and `bury` are
compare-and-sets on the lease, so a worker whose lease ran out (and whose row another worker
took) changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import anyio.lowlevel

from pushgate.outbox.model import MAX_ERROR, LeasedIds, OutboxMessage, OutboxRow
from pushgate.outbox.ports import OutboxStats
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.sqlite.columns import Insert, Select
from pushgate.store.sqlite.connection import Db

# A (kind, idempotency_key) that exists already keeps its row as it is.
_ADD = Insert(t.outbox, without=("id",), suffix="ON CONFLICT (kind, idempotency_key) DO NOTHING")


_ADD_LEASED = f"{_ADD.sql} RETURNING id"


def add(conn: sqlite3.Connection, messages: Sequence[OutboxMessage], now_ms: int) -> LeasedIds:
    """Inside a write of the caller's, so that a change's outbox rows commit with it; the ids
    of the rows written leased (outbox/handoff.py)."""
    free = [_ADD.params(rows.outbox_values(m, now_ms)) for m in messages if m.lease is None]
    if free:
        conn.executemany(_ADD.sql, free)
    leased: dict[tuple[str, str], int] = {}
    for m in messages:
        if m.lease is not None:
            row = conn.execute(_ADD_LEASED, _ADD.params(rows.outbox_values(m, now_ms))).fetchone()
            if row is not None:  # None: the (kind, key) was there already
                leased[m.kind, m.key] = row[0]
    return leased


# The stored states are the values of `OutboxState`.
_CLAIM = Select(
    "UPDATE outbox SET lease_owner = ?1, lease_until_ms = ?2, attempts = attempts + 1,"
    " updated_ms = ?3 WHERE id IN (SELECT id FROM outbox"
    " WHERE state = 'pending' AND next_attempt_ms <= ?3"
    " AND (lease_until_ms IS NULL OR lease_until_ms <= ?3)"
    " AND kind IN (SELECT value FROM json_each(?5)) ORDER BY next_attempt_ms, id LIMIT ?4)"
    " RETURNING {outbox}",
    outbox=t.outbox,
)


class SqliteOutbox:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def add(self, messages: Sequence[OutboxMessage], now_ms: int) -> None:
        if messages:
            await self._db.write(lambda c: add(c, messages, now_ms))

    async def claim(
        self,
        kinds: Sequence[str],
        owner: str,
        now_ms: int,
        lease_ms: int,
        limit: int,
        done: Sequence[int] = (),
    ) -> Sequence[OutboxRow]:
        await anyio.lowlevel.checkpoint()  # workers claim in a loop: let the event loop in
        if not kinds or limit <= 0:
            await self.complete_many(done, owner, now_ms)
            return []
        finished = [(row_id, owner, now_ms) for row_id in done]
        params = (owner, now_ms + lease_ms, now_ms, limit, json.dumps(list(kinds)))

        def work(c: sqlite3.Connection) -> list[Any]:
            if finished:
                c.executemany(self._COMPLETE, finished)
            return c.execute(_CLAIM.sql, params).fetchall()

        found = await self._db.write(work)
        claimed = [rows.outbox_row(_CLAIM.record(r)) for r in found]
        # RETURNING comes in no particular order: oldest due first, as the port says.
        claimed.sort(key=lambda row: (row.next_attempt_ms, row.id))
        return claimed

    _COMPLETE = (
        "UPDATE outbox SET state = 'done', lease_owner = NULL, lease_until_ms = NULL,"
        " updated_ms = ?3 WHERE id = ?1 AND lease_owner = ?2 AND state = 'pending'"
    )

    async def complete(self, row_id: int, owner: str, now_ms: int) -> bool:
        params = (row_id, owner, now_ms)
        return await self._db.write(lambda c: c.execute(self._COMPLETE, params).rowcount == 1)

    async def complete_many(self, row_ids: Sequence[int], owner: str, now_ms: int) -> None:
        finished = [(row_id, owner, now_ms) for row_id in row_ids]
        if finished:
            await self._db.write(lambda c: c.executemany(self._COMPLETE, finished))

    _RETRY = (
        "UPDATE outbox SET next_attempt_ms = ?4, lease_owner = NULL, lease_until_ms = NULL,"
        " last_error = ?5, updated_ms = ?3 WHERE id = ?1 AND lease_owner = ?2"
        " AND state = 'pending'"
    )

    async def retry(
        self, row_id: int, owner: str, now_ms: int, next_attempt_ms: int, error: str
    ) -> bool:
        params = (row_id, owner, now_ms, next_attempt_ms, error[:MAX_ERROR])
        return await self._db.write(lambda c: c.execute(self._RETRY, params).rowcount == 1)

    _BURY = (
        "UPDATE outbox SET state = 'dead', lease_owner = NULL, lease_until_ms = NULL,"
        " last_error = ?4, updated_ms = ?3 WHERE id = ?1 AND lease_owner = ?2"
        " AND state = 'pending'"
    )

    async def bury(self, row_id: int, owner: str, now_ms: int, error: str) -> bool:
        params = (row_id, owner, now_ms, error[:MAX_ERROR])
        return await self._db.write(lambda c: c.execute(self._BURY, params).rowcount == 1)

    _GET = Select("SELECT {o} FROM outbox o WHERE o.id = ?", o=t.outbox)

    async def get(self, row_id: int) -> OutboxRow | None:
        found = await self._db.fetch(self._GET.sql, (row_id,))
        return rows.outbox_row(self._GET.record(found[0])) if found else None

    # Three index-only counts over ix_outbox_due (state, next_attempt_ms).
    _STATS = (
        "SELECT (SELECT count(*) FROM outbox WHERE state = 'pending'),"
        " (SELECT count(*) FROM outbox WHERE state = 'dead'),"
        " (SELECT min(next_attempt_ms) FROM outbox WHERE state = 'pending')"
    )

    async def stats(self, now_ms: int) -> OutboxStats:
        pending, dead, oldest = (await self._db.fetch(self._STATS))[0]
        return OutboxStats(pending=pending, dead=dead, oldest_due_ms=oldest)
