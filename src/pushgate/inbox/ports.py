"""What the inbox needs from persistence. Every call is scoped to one realm and one user."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pushgate.inbox.model import InboxMessage, Page


class Inbox(Protocol):
    async def add(self, message: InboxMessage) -> None: ...

    async def page(self, realm: str, user_id: str, page: Page) -> Sequence[InboxMessage]:
        """The user's messages, newest first (`page.only_unread`: unread ones only)."""
        ...

    async def get(self, realm: str, user_id: str, message_id: str) -> InboxMessage | None: ...

    async def mark_read(self, realm: str, user_id: str, message_id: str, now_ms: int) -> bool:
        """False if the user has no such message; reading a read message keeps its time."""
        ...

    async def mark_all_read(self, realm: str, user_id: str, now_ms: int) -> int:
        """How many messages were unread."""
        ...

    async def count_unread(self, realm: str, user_id: str) -> int: ...
