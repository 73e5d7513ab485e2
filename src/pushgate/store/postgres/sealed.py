"""Key rotation on PostgreSQL (`rotation/ports.py`): a page of sealed values read, re-sealed
in the process, and written back by one statement that changes only the rows still holding
the value read (compare-and-set), so a concurrent change of a row is never overwritten."""

from __future__ import annotations

from pushgate.errors import SecretKeyMismatch
from pushgate.rotation.model import Census, ResealPage
from pushgate.store.postgres.sql import Db
from pushgate.store.sealed_tables import SEALED
from pushgate.store.sealing import Sealer, SealError, sealed_key_id


class PostgresSealed:
    def __init__(self, db: Db, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    async def census(self) -> Census:
        tables: dict[str, dict[int | None, int]] = {}
        for table in SEALED:
            by_key: dict[int | None, int] = {}
            rows = await self._db.fetch(
                f"SELECT substr(secret, 1, 2) AS head, count(*) AS n FROM {table} GROUP BY 1"
            )
            for row in rows:
                key = sealed_key_id(bytes(row["head"]))
                by_key[key] = by_key.get(key, 0) + row["n"]
            tables[table] = by_key
        return Census(tables)

    async def reseal(self, table: str, after: str | None, limit: int) -> ResealPage:
        pk, prefix = SEALED[table]
        found = await self._db.fetch(
            f"SELECT {pk} AS pk, secret FROM {table} WHERE {pk} > $1 ORDER BY {pk} LIMIT $2",
            after or "",
            limit,
        )
        keys, olds, news = [], [], []
        for row in found:
            old = bytes(row["secret"])
            if not self._sealer.needs_reseal(old):
                continue
            context = prefix + row["pk"]
            try:
                plain = self._sealer.open(old, context)
            except SealError as exc:
                raise SecretKeyMismatch(
                    "a sealed secret does not open under any key of the ring", reason=str(exc)
                ) from exc
            keys.append(row["pk"])
            olds.append(old)
            news.append(self._sealer.seal(plain, context))
        resealed = 0
        if keys:
            status = await self._db.execute(
                f"UPDATE {table} t SET secret = u.new"
                " FROM unnest($1::varchar[], $2::bytea[], $3::bytea[]) AS u(pk, old, new)"
                f" WHERE t.{pk} = u.pk AND t.secret = u.old",
                keys,
                olds,
                news,
            )
            resealed = int(status.rsplit(" ", 1)[1])
        last = found[-1]["pk"] if found else after
        return ResealPage(last, len(found), resealed)
