"""The message inbox on SQLite (`inbox/ports.py`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pushgate.inbox.model import InboxMessage, Page
from pushgate.store import inbox_rows
from pushgate.store import schema as t
from pushgate.store.sqlite.columns import Insert, Select
from pushgate.store.sqlite.connection import Db


class SqliteInbox:
    def __init__(self, db: Db) -> None:
        self._db = db

    _ADD = Insert(t.inbox_messages)

    async def add(self, message: InboxMessage) -> None:
        params = self._ADD.params(inbox_rows.message_values(message))
        await self._db.write(lambda c: c.execute(self._ADD.sql, params))

    _PAGE = Select(
        "SELECT {m} FROM inbox_messages m WHERE m.realm = ?1 AND m.user_id = ?2"
        " AND (?3 = 0 OR m.read_ms IS NULL) ORDER BY m.created_ms DESC, m.id DESC"
        " LIMIT ?4 OFFSET ?5",
        m=t.inbox_messages,
    )

    async def page(self, realm: str, user_id: str, page: Page) -> Sequence[InboxMessage]:
        params = (realm, user_id, int(page.only_unread), page.size, page.offset)
        found = await self._db.fetch(self._PAGE.sql, params)
        return [inbox_rows.message(self._PAGE.record(r)) for r in found]

    _GET = Select(
        "SELECT {m} FROM inbox_messages m WHERE m.id = ?1 AND m.realm = ?2 AND m.user_id = ?3",
        m=t.inbox_messages,
    )

    async def get(self, realm: str, user_id: str, message_id: str) -> InboxMessage | None:
        found = await self._db.fetch(self._GET.sql, (message_id, realm, user_id))
        return inbox_rows.message(self._GET.record(found[0])) if found else None

    _READ = (
        "UPDATE inbox_messages SET read_ms = coalesce(read_ms, ?4)"
        " WHERE id = ?1 AND realm = ?2 AND user_id = ?3"
    )

    async def mark_read(self, realm: str, user_id: str, message_id: str, now_ms: int) -> bool:
        def work(c: sqlite3.Connection) -> bool:
            return c.execute(self._READ, (message_id, realm, user_id, now_ms)).rowcount == 1

        return await self._db.write(work)

    _READ_ALL = (
        "UPDATE inbox_messages SET read_ms = ?3"
        " WHERE realm = ?1 AND user_id = ?2 AND read_ms IS NULL"
    )

    async def mark_all_read(self, realm: str, user_id: str, now_ms: int) -> int:
        def work(c: sqlite3.Connection) -> int:
            return c.execute(self._READ_ALL, (realm, user_id, now_ms)).rowcount

        return await self._db.write(work)

    _COUNT = (
        "SELECT count(*) FROM inbox_messages WHERE realm = ?1 AND user_id = ?2 AND read_ms IS NULL"
    )

    async def count_unread(self, realm: str, user_id: str) -> int:
        found = await self._db.fetch(self._COUNT, (realm, user_id))
        count: int = found[0][0]
        return count
