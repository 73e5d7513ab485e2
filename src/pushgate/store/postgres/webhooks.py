"""Webhook subscriptions on PostgreSQL (`webhooks/ports.py`)."""

from __future__ import annotations

from collections.abc import Sequence

from pushgate.errors import SecretKeyMismatch
from pushgate.outbox.model import OutboxRow, OutboxState
from pushgate.store import rows, webhook_rows
from pushgate.store import schema as t
from pushgate.store.postgres.sql import Db, args, columns, insert, updated_one
from pushgate.store.sealing import Sealer, SealError
from pushgate.webhooks.model import Webhook
from pushgate.webhooks.ports import Webhooks

ADD = insert(t.webhooks)
GET = "SELECT * FROM webhooks WHERE id = $1"
LIST = "SELECT * FROM webhooks WHERE $1::text IS NULL OR realm = $1 ORDER BY created_ms, id"
COUNT = "SELECT count(*) FROM webhooks WHERE realm = $1"
REMOVE = "DELETE FROM webhooks WHERE id = $1"
DELIVERIES = (
    f"SELECT {columns(t.outbox, 'o')} FROM outbox o WHERE o.kind = $1"
    " AND ($2::text IS NULL OR o.realm = $2) AND ($3::text IS NULL OR o.state = $3)"
    " ORDER BY o.id DESC LIMIT $4"
)


class PostgresWebhooks(Webhooks):
    def __init__(self, db: Db, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    def _webhook(self, row: rows.Row) -> Webhook:
        try:
            return webhook_rows.webhook(row, self._sealer)
        except SealError as exc:
            raise SecretKeyMismatch("a webhook secret does not open", reason=str(exc)) from exc

    async def add(self, webhook: Webhook) -> None:
        values = webhook_rows.webhook_values(webhook, self._sealer)
        await self._db.execute(ADD, *args(t.webhooks, values))

    async def get(self, webhook_id: str) -> Webhook | None:
        row = await self._db.fetchrow(GET, webhook_id)
        return self._webhook(row) if row else None

    async def list(self, realm: str | None = None) -> Sequence[Webhook]:
        return [self._webhook(row) for row in await self._db.fetch(LIST, realm)]

    async def count(self, realm: str) -> int:
        row = await self._db.fetchrow(COUNT, realm)
        assert row is not None  # an aggregate always has its one row
        count: int = row[0]
        return count

    async def remove(self, webhook_id: str) -> bool:
        return updated_one(await self._db.execute(REMOVE, webhook_id))

    async def deliveries(
        self, kind: str, realm: str | None, state: OutboxState | None, limit: int
    ) -> Sequence[OutboxRow]:
        found = await self._db.fetch(DELIVERIES, kind, realm, state.value if state else None, limit)
        return [rows.outbox_row(row) for row in found]
