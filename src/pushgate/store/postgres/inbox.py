"""The message inbox on PostgreSQL (`inbox/ports.py`)."""

from __future__ import annotations

from collections.abc import Sequence

from pushgate.inbox.model import InboxMessage, Page
from pushgate.inbox.ports import Inbox
from pushgate.store import inbox_rows
from pushgate.store import schema as t
from pushgate.store.postgres.sql import Db, args, insert, updated_one

ADD = insert(t.inbox_messages)
PAGE = (
    "SELECT * FROM inbox_messages WHERE realm = $1 AND user_id = $2"
    " AND (NOT $3::boolean OR read_ms IS NULL) ORDER BY created_ms DESC, id DESC"
    " LIMIT $4 OFFSET $5"
)
GET = "SELECT * FROM inbox_messages WHERE id = $1 AND realm = $2 AND user_id = $3"
READ = (
    "UPDATE inbox_messages SET read_ms = coalesce(read_ms, $4)"
    " WHERE id = $1 AND realm = $2 AND user_id = $3"
)
READ_ALL = (
    "UPDATE inbox_messages SET read_ms = $3 WHERE realm = $1 AND user_id = $2 AND read_ms IS NULL"
)
COUNT = "SELECT count(*) FROM inbox_messages WHERE realm = $1 AND user_id = $2 AND read_ms IS NULL"


class PostgresInbox(Inbox):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def add(self, message: InboxMessage) -> None:
        await self._db.execute(ADD, *args(t.inbox_messages, inbox_rows.message_values(message)))

    async def page(self, realm: str, user_id: str, page: Page) -> Sequence[InboxMessage]:
        found = await self._db.fetch(PAGE, realm, user_id, page.only_unread, page.size, page.offset)
        return [inbox_rows.message(row) for row in found]

    async def get(self, realm: str, user_id: str, message_id: str) -> InboxMessage | None:
        row = await self._db.fetchrow(GET, message_id, realm, user_id)
        return inbox_rows.message(row) if row else None

    async def mark_read(self, realm: str, user_id: str, message_id: str, now_ms: int) -> bool:
        return updated_one(await self._db.execute(READ, message_id, realm, user_id, now_ms))

    async def mark_all_read(self, realm: str, user_id: str, now_ms: int) -> int:
        status = await self._db.execute(READ_ALL, realm, user_id, now_ms)
        return int(status.rsplit(" ", 1)[-1])

    async def count_unread(self, realm: str, user_id: str) -> int:
        row = await self._db.fetchrow(COUNT, realm, user_id)
        assert row is not None  # an aggregate always has its one row
        count: int = row[0]
        return count
