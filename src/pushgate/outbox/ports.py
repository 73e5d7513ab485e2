"""What the outbox needs from persistence (DESIGN.md layer 2). Claims are leases: on
PostgreSQL `FOR UPDATE SKIP LOCKED`, on SQLite one writer at a time; either way no two workers
hold the same row at once, and a lease that runs out frees the row for another worker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pushgate.outbox.model import OutboxMessage, OutboxRow


@dataclass(frozen=True, slots=True)
class OutboxStats:
    pending: int
    dead: int
    oldest_due_ms: int | None  # next_attempt_ms of the oldest pending row


class Outbox(Protocol):
    async def add(self, messages: Sequence[OutboxMessage], now_ms: int) -> None:
        """Write new rows; a (kind, key) that exists already is kept as it is."""
        ...

    async def claim(
        self,
        kinds: Sequence[str],
        owner: str,
        now_ms: int,
        lease_ms: int,
        limit: int,
        done: Sequence[int] = (),
    ) -> Sequence[OutboxRow]:
        """Mark `done` (rows `owner` still leases) done, then lease up to `limit` due rows of
        these kinds to `owner` until now + `lease_ms`, oldest due first, counting one more
        attempt on each: one round trip where a worker would otherwise make 1 + N."""
        ...

    async def complete(self, row_id: int, owner: str, now_ms: int) -> bool:
        """Mark a leased row done; False if the lease was lost (another worker has it)."""
        ...

    async def complete_many(self, row_ids: Sequence[int], owner: str, now_ms: int) -> None:
        """Mark leased rows done, those whose lease is still `owner`'s."""
        ...

    async def retry(
        self, row_id: int, owner: str, now_ms: int, next_attempt_ms: int, error: str
    ) -> bool:
        """Release a leased row to be tried again at `next_attempt_ms`."""
        ...

    async def bury(self, row_id: int, owner: str, now_ms: int, error: str) -> bool:
        """Dead-letter a leased row: it is never tried again."""
        ...

    async def get(self, row_id: int) -> OutboxRow | None: ...
    async def stats(self, now_ms: int) -> OutboxStats: ...
