"""Journeys on SQLite (`journeys/ports.py`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pushgate.journeys.model import StoredTree
from pushgate.store.sqlite.connection import Db

_TREE_COLUMNS = "realm, name, definition, created_ms, updated_ms"


def _tree(row: Sequence[object]) -> StoredTree:
    realm, name, definition, created, updated = row
    return StoredTree(str(realm), str(name), str(definition), int(created), int(updated))  # type: ignore[call-overload]


class SqliteJourneys:
    def __init__(self, db: Db) -> None:
        self._db = db

    _GET = f"SELECT {_TREE_COLUMNS} FROM journey_trees WHERE realm = ?1 AND name = ?2"  # noqa: S608

    async def get_tree(self, realm: str, name: str) -> StoredTree | None:
        found = await self._db.fetch(self._GET, (realm, name))
        return _tree(found[0]) if found else None

    _PUT = (
        f"INSERT INTO journey_trees ({_TREE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"  # noqa: S608
        " ON CONFLICT (realm, name) DO UPDATE"
        " SET definition = excluded.definition, updated_ms = excluded.updated_ms"
    )

    async def put_tree(self, tree: StoredTree) -> None:
        params = (tree.realm, tree.name, tree.definition, tree.created_ms, tree.updated_ms)
        await self._db.write(lambda c: c.execute(self._PUT, params))

    _LIST = f"SELECT {_TREE_COLUMNS} FROM journey_trees WHERE realm = ?1 ORDER BY name"  # noqa: S608

    async def list_trees(self, realm: str) -> Sequence[StoredTree]:
        return [_tree(row) for row in await self._db.fetch(self._LIST, (realm,))]

    async def replace_recovery_codes(
        self, user_id: str, digests: Sequence[str], now_ms: int
    ) -> None:
        def work(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM recovery_codes WHERE user_id = ?1", (user_id,))
            c.executemany(
                "INSERT INTO recovery_codes (user_id, digest, created_ms) VALUES (?1, ?2, ?3)",
                [(user_id, d, now_ms) for d in digests],
            )

        await self._db.write(work)

    async def use_recovery_code(self, user_id: str, digest: str) -> bool:
        def work(c: sqlite3.Connection) -> bool:
            sql = "DELETE FROM recovery_codes WHERE user_id = ?1 AND digest = ?2"
            return c.execute(sql, (user_id, digest)).rowcount == 1

        return await self._db.write(work)

    async def count_recovery_codes(self, user_id: str) -> int:
        found = await self._db.fetch(
            "SELECT count(*) FROM recovery_codes WHERE user_id = ?1", (user_id,)
        )
        count: int = found[0][0]
        return count

    async def set_opt_out(self, user_id: str, method: str, now_ms: int) -> None:
        sql = (
            "INSERT INTO mfa_opt_outs (user_id, method, created_ms) VALUES (?1, ?2, ?3)"
            " ON CONFLICT DO NOTHING"
        )
        await self._db.write(lambda c: c.execute(sql, (user_id, method, now_ms)))

    async def opted_out(self, user_id: str, method: str) -> bool:
        sql = "SELECT 1 FROM mfa_opt_outs WHERE user_id = ?1 AND method = ?2"
        return bool(await self._db.fetch(sql, (user_id, method)))

    async def set_password_hash(self, user_id: str, password_hash: str) -> bool:
        def work(c: sqlite3.Connection) -> bool:
            sql = "UPDATE users SET password_hash = ?2 WHERE id = ?1"
            return c.execute(sql, (user_id, password_hash)).rowcount == 1

        return await self._db.write(work)
