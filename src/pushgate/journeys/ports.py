"""What journeys need from persistence (DESIGN.md layer 2): a realm's trees, the users'
recovery codes (digests only, single use) and MFA opt-outs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pushgate.journeys.model import StoredTree


class Journeys(Protocol):
    async def get_tree(self, realm: str, name: str) -> StoredTree | None: ...
    async def put_tree(self, tree: StoredTree) -> None:
        """Insert, or replace the definition of the realm's tree of that name."""
        ...

    async def list_trees(self, realm: str) -> Sequence[StoredTree]:
        """By name."""
        ...

    async def replace_recovery_codes(
        self, user_id: str, digests: Sequence[str], now_ms: int
    ) -> None: ...
    async def use_recovery_code(self, user_id: str, digest: str) -> bool:
        """Delete the code, atomically: True once, False for a code used or never issued."""
        ...

    async def count_recovery_codes(self, user_id: str) -> int: ...
    async def set_opt_out(self, user_id: str, method: str, now_ms: int) -> None:
        """Idempotent."""
        ...

    async def opted_out(self, user_id: str, method: str) -> bool: ...
    async def set_password_hash(self, user_id: str, password_hash: str) -> bool:
        """The Data Store Decision's credential (`pushgate user passwd`); False: no user."""
        ...
