"""Webhook subscriptions on SQLite (`webhooks/ports.py`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pushgate.outbox.model import OutboxRow, OutboxState
from pushgate.store import rows, webhook_rows
from pushgate.store import schema as t
from pushgate.store.sealing import Sealer
from pushgate.store.sqlite.columns import Insert, Select
from pushgate.store.sqlite.connection import Db
from pushgate.webhooks.model import Webhook


class SqliteWebhooks:
    def __init__(self, db: Db, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    _ADD = Insert(t.webhooks)

    async def add(self, webhook: Webhook) -> None:
        params = self._ADD.params(webhook_rows.webhook_values(webhook, self._sealer))
        await self._db.write(lambda c: c.execute(self._ADD.sql, params))

    _GET = Select("SELECT {w} FROM webhooks w WHERE w.id = ?", w=t.webhooks)

    async def get(self, webhook_id: str) -> Webhook | None:
        found = await self._db.fetch(self._GET.sql, (webhook_id,))
        if not found:
            return None
        return webhook_rows.webhook(self._GET.record(found[0]), self._sealer)

    _LIST = Select(
        "SELECT {w} FROM webhooks w WHERE ?1 IS NULL OR w.realm = ?1 ORDER BY w.created_ms, w.id",
        w=t.webhooks,
    )

    async def list(self, realm: str | None = None) -> Sequence[Webhook]:
        found = await self._db.fetch(self._LIST.sql, (realm,))
        return [webhook_rows.webhook(self._LIST.record(r), self._sealer) for r in found]

    async def count(self, realm: str) -> int:
        found = await self._db.fetch("SELECT count(*) FROM webhooks WHERE realm = ?", (realm,))
        count: int = found[0][0]
        return count

    async def remove(self, webhook_id: str) -> bool:
        def work(c: sqlite3.Connection) -> bool:
            return c.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,)).rowcount == 1

        return await self._db.write(work)

    _DELIVERIES = Select(
        "SELECT {o} FROM outbox o WHERE o.kind = ?1 AND (?2 IS NULL OR o.realm = ?2)"
        " AND (?3 IS NULL OR o.state = ?3) ORDER BY o.id DESC LIMIT ?4",
        o=t.outbox,
    )

    async def deliveries(
        self, kind: str, realm: str | None, state: OutboxState | None, limit: int
    ) -> Sequence[OutboxRow]:
        params = (kind, realm, state.value if state else None, limit)
        found = await self._db.fetch(self._DELIVERIES.sql, params)
        return [rows.outbox_row(self._DELIVERIES.record(r)) for r in found]
