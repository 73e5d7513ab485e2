"""What a key rotation needs from persistence (DESIGN.md layer 2)."""

from __future__ import annotations

from typing import Protocol

from pushgate.rotation.model import Census, ResealPage


class SealedSecrets(Protocol):
    async def census(self) -> Census:
        """Count every sealed value by the key that sealed it (reads each table once)."""
        ...

    async def reseal(self, table: str, after: str | None, limit: int) -> ResealPage:
        """Read up to `limit` rows of `table` past primary key `after`, in key order, and
        seal again under the ring's first key every value sealed under another; a row that
        changed meanwhile is left to the next pass (compare-and-set on the old value)."""
        ...
