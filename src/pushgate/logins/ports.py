"""What login sessions need from persistence (DESIGN.md layer 2): the sessions by token
digest, and the journey steps already submitted (an authId's step id is used once)."""

from __future__ import annotations

from typing import Protocol

from pushgate.logins.model import Login


class Logins(Protocol):
    async def add(self, digest: str, login: Login) -> None: ...
    async def get(self, digest: str) -> Login | None: ...
    async def delete(self, digest: str) -> Login | None:
        """Remove the session, atomically: what was removed, None if there was none."""
        ...

    async def purge(self, now_ms: int) -> int:
        """Delete the sessions and step ids expired before `now_ms`; how many went."""
        ...

    async def consume_step(self, step_id: str, expires_ms: int) -> bool:
        """Insert-if-absent, atomically: True the first time, False for a step id seen."""
        ...
