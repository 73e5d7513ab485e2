"""What webhooks need from persistence (DESIGN.md layer 2): the subscriptions, their secrets
sealed at rest like device secrets, and a read of the delivery rows of the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pushgate.outbox.model import OutboxRow, OutboxState
from pushgate.webhooks.model import Webhook


class Webhooks(Protocol):
    async def add(self, webhook: Webhook) -> None: ...

    async def get(self, webhook_id: str) -> Webhook | None: ...

    async def list(self, realm: str | None = None) -> Sequence[Webhook]:
        """Every subscription (of one realm), oldest first."""
        ...

    async def count(self, realm: str) -> int: ...

    async def remove(self, webhook_id: str) -> bool:
        """False if there was no such subscription."""
        ...

    async def deliveries(
        self, kind: str, realm: str | None, state: OutboxState | None, limit: int
    ) -> Sequence[OutboxRow]:
        """The newest outbox rows of `kind` (of one realm, in one state), newest first."""
        ...
