"""Key rotation on SQLite (`rotation/ports.py`): a page of sealed values re-sealed in one
BEGIN IMMEDIATE … COMMIT, so the write lock is held for one small batch at a time."""

from __future__ import annotations

import sqlite3

from pushgate.rotation.model import Census, ResealPage
from pushgate.store.sealed_tables import SEALED
from pushgate.store.sealing import Sealer, sealed_key_id
from pushgate.store.sqlite.connection import Db


def _reseal(
    conn: sqlite3.Connection, sealer: Sealer, table: str, after: str | None, limit: int
) -> ResealPage:
    pk, prefix = SEALED[table]
    found = conn.execute(
        f"SELECT {pk}, secret FROM {table} WHERE {pk} > ? ORDER BY {pk} LIMIT ?",  # noqa: S608 - constants
        (after or "", limit),
    ).fetchall()
    resealed = 0
    for key, secret in found:
        old = bytes(secret)
        if not sealer.needs_reseal(old):
            continue
        context = prefix + key
        new = sealer.seal(sealer.open(old, context), context)
        updated = conn.execute(
            f"UPDATE {table} SET secret = ? WHERE {pk} = ? AND secret = ?",  # noqa: S608
            (new, key, old),
        ).rowcount
        resealed += updated
    return ResealPage(found[-1][0] if found else after, len(found), resealed)


class SqliteSealed:
    def __init__(self, db: Db, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    async def census(self) -> Census:
        tables: dict[str, dict[int | None, int]] = {}
        for table in SEALED:
            by_key: dict[int | None, int] = {}
            rows = await self._db.fetch(
                f"SELECT substr(secret, 1, 2), count(*) FROM {table} GROUP BY 1"  # noqa: S608
            )
            for head, count in rows:
                key = sealed_key_id(bytes(head))
                by_key[key] = by_key.get(key, 0) + count
            tables[table] = by_key
        return Census(tables)

    async def reseal(self, table: str, after: str | None, limit: int) -> ResealPage:
        sealer = self._sealer
        return await self._db.write(lambda conn: _reseal(conn, sealer, table, after, limit))
