"""What the retention purge needs from persistence (DESIGN.md layer 2).

Every statement deletes at most `limit` rows found on an index of the time column it tests
(migration 0009), so one batch costs the same at a thousand rows or a million, and holds its
locks briefly; a caller repeats batches until they come back short.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pushgate.accounts.model import Realm
from pushgate.retention.model import Cutoffs, PurgeCounts


class Retention(Protocol):
    async def realms(self) -> Sequence[Realm]:
        """Every realm with its policy."""
        ...

    async def count(self, cutoffs: Cutoffs) -> PurgeCounts:
        """What `purge` would delete in the realm, all batches together (the dry run)."""
        ...

    async def purge(self, cutoffs: Cutoffs, limit: int) -> PurgeCounts:
        """One batch in the realm, at most `limit` rows of each kind: finished sessions (their
        notifications first), registrations past their deadline, settled outbox rows, audit
        rows. Each kind commits on its own."""
        ...

    async def count_idempotency_keys(self, before_ms: int) -> int: ...

    async def purge_idempotency_keys(self, before_ms: int, limit: int) -> int:
        """Idempotency keys older than their window, every realm at once."""
        ...
