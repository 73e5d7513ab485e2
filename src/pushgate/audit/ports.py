"""What the audit trail needs from persistence (DESIGN.md layer 2).

The table is append-only: nothing but the retention purge (`retention/ports.py`) deletes a
row, and nothing updates one. Reads are bounded pages in an index's order, so a reader of
millions of rows holds neither memory nor a long transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pushgate.audit.model import AuditEntry, AuditQuery, AuditRecord


class AuditLog(Protocol):
    async def append(self, entry: AuditEntry) -> None: ...

    async def newest(self, realm: str | None, limit: int) -> Sequence[AuditRecord]:
        """The `limit` latest entries (by time, then id), oldest first."""
        ...

    async def after_id(self, after_id: int, realm: str | None, limit: int) -> Sequence[AuditRecord]:
        """Entries numbered above `after_id`, by id: what was appended since."""
        ...

    async def window(
        self, query: AuditQuery, after: tuple[int, int] | None, limit: int
    ) -> Sequence[AuditRecord]:
        """One page of the query's entries by (time, id), those past `after` = (at_ms, id)."""
        ...
