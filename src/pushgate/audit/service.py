"""Reading the audit trail (`pushgate audit tail|export`, docs/AUDIT.md): the newest entries,
what is appended after them, and a time window page by page, so that an export of millions
of rows streams in constant memory with one short read per page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import anyio

from pushgate.audit.model import AuditQuery, AuditRecord
from pushgate.store.ports import Store

PAGE = 1000
# Ids come from a sequence: on PostgreSQL a transaction may commit an id below one already
# read. Following re-reads this many ids below the highest seen, so a late commit is printed
# when it appears (skipping what was printed already) instead of being lost.
LATE_COMMIT_IDS = 1000


class AuditTrail:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def newest(self, realm: str | None, count: int) -> Sequence[AuditRecord]:
        async with self._store.autocommit() as db:
            return await db.audit.newest(realm, count)

    async def export(self, query: AuditQuery, page: int = PAGE) -> AsyncIterator[AuditRecord]:
        """Every entry of the window by (time, id), one page read at a time."""
        after: tuple[int, int] | None = None
        while True:
            async with self._store.autocommit() as db:
                found = await db.audit.window(query, after, page)
            for record in found:
                yield record
            if len(found) < page:
                return
            last = found[-1]
            after = (last.entry.at_ms, last.id)

    async def follow(
        self,
        realm: str | None,
        seen: Sequence[AuditRecord],
        poll_seconds: float = 1.0,
        page: int = PAGE,
    ) -> AsyncIterator[AuditRecord]:
        """Entries appended after `seen` (what was shown already), by id, until cancelled.
        What existed when following began counts as shown."""
        floor = max((r.id for r in seen), default=await self._highest(realm))
        highest, printed = floor, set[int]()
        # At most LATE_COMMIT_IDS of a read are at or below `highest`: a full read holds
        # `page` new ones at least, so following always moves on.
        limit = LATE_COMMIT_IDS + page
        while True:
            low = max(floor, highest - LATE_COMMIT_IDS)
            async with self._store.autocommit() as db:
                found = await db.audit.after_id(low, realm, limit)
            for record in found:
                if record.id not in printed:
                    printed.add(record.id)
                    yield record
            if found:
                highest = max(highest, found[-1].id)
                # Only ids within the window can come again: forget the rest.
                printed = {i for i in printed if i > highest - LATE_COMMIT_IDS}
            if len(found) < limit:
                await anyio.sleep(poll_seconds)

    async def _highest(self, realm: str | None) -> int:
        async with self._store.autocommit() as db:
            newest = await db.audit.newest(realm, 1)
        return newest[-1].id if newest else 0
