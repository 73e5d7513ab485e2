"""Journeys on PostgreSQL (`journeys/ports.py`)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from pushgate.journeys.model import StoredTree
from pushgate.journeys.ports import Journeys
from pushgate.store.postgres.sql import Db, updated_one

GET = "SELECT * FROM journey_trees WHERE realm = $1 AND name = $2"
PUT = (
    "INSERT INTO journey_trees (realm, name, definition, created_ms, updated_ms)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (realm, name) DO UPDATE"
    " SET definition = excluded.definition, updated_ms = excluded.updated_ms"
)
LIST = "SELECT * FROM journey_trees WHERE realm = $1 ORDER BY name"
# One statement: the old set goes and the new one comes in together.
REPLACE_CODES = (
    "WITH gone AS (DELETE FROM recovery_codes WHERE user_id = $1)"
    " INSERT INTO recovery_codes (user_id, digest, created_ms)"
    " SELECT $1, d, $3 FROM unnest($2::text[]) AS d"
)
USE_CODE = "DELETE FROM recovery_codes WHERE user_id = $1 AND digest = $2"
COUNT_CODES = "SELECT count(*) FROM recovery_codes WHERE user_id = $1"
OPT_OUT = (
    "INSERT INTO mfa_opt_outs (user_id, method, created_ms) VALUES ($1, $2, $3)"
    " ON CONFLICT DO NOTHING"
)
OPTED_OUT = "SELECT 1 FROM mfa_opt_outs WHERE user_id = $1 AND method = $2"
SET_PASSWORD = "UPDATE users SET password_hash = $2 WHERE id = $1"  # noqa: S105


def _tree(row: asyncpg.Record) -> StoredTree:
    return StoredTree(
        row["realm"], row["name"], row["definition"], row["created_ms"], row["updated_ms"]
    )


class PostgresJourneys(Journeys):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def get_tree(self, realm: str, name: str) -> StoredTree | None:
        row = await self._db.fetchrow(GET, realm, name)
        return _tree(row) if row else None

    async def put_tree(self, tree: StoredTree) -> None:
        await self._db.execute(
            PUT, tree.realm, tree.name, tree.definition, tree.created_ms, tree.updated_ms
        )

    async def list_trees(self, realm: str) -> Sequence[StoredTree]:
        return [_tree(row) for row in await self._db.fetch(LIST, realm)]

    async def replace_recovery_codes(
        self, user_id: str, digests: Sequence[str], now_ms: int
    ) -> None:
        await self._db.execute(REPLACE_CODES, user_id, list(digests), now_ms)

    async def use_recovery_code(self, user_id: str, digest: str) -> bool:
        return updated_one(await self._db.execute(USE_CODE, user_id, digest))

    async def count_recovery_codes(self, user_id: str) -> int:
        row = await self._db.fetchrow(COUNT_CODES, user_id)
        assert row is not None  # an aggregate always has its one row
        count: int = row[0]
        return count

    async def set_opt_out(self, user_id: str, method: str, now_ms: int) -> None:
        await self._db.execute(OPT_OUT, user_id, method, now_ms)

    async def opted_out(self, user_id: str, method: str) -> bool:
        return await self._db.fetchrow(OPTED_OUT, user_id, method) is not None

    async def set_password_hash(self, user_id: str, password_hash: str) -> bool:
        return updated_one(await self._db.execute(SET_PASSWORD, user_id, password_hash))
