"""The retention purge at scale (issue 10: "the cost stays flat at 1 M rows").

    .venv/bin/python benchmarks/purge.py                        # 10 k and 1 M rows per table
    .venv/bin/python benchmarks/purge.py --sizes 1000000 --batch 1000 --repeat 5

For each size, a fresh PostgreSQL database (created and dropped on ADMIN_URL) is migrated and
seeded with `size` sessions (one notification each), `size` outbox rows and `size` audit rows,
half of each past the root realm's retention, the rest recent (so the statements must find
the old rows on an index, not by reading the table). Then, `--repeat` times: one purge batch
(`retention.purge`, at most `--batch` rows of each kind, as the background task runs it),
timed on the wall clock, with the statements' plans printed once (`EXPLAIN`). A batch that
costs the same at 10 k and at 1 M rows is the claim; docs/PERFORMANCE.md records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import statistics
import time

import asyncpg

from pushgate.accounts.model import RealmPolicy
from pushgate.retention.model import DAY_MS, cutoffs
from pushgate.store import migrate
from pushgate.store.engine import create_engine
from pushgate.store.postgres import PostgresStore
from pushgate.store.postgres import retention as sql
from pushgate.store.sealing import Sealer

NOW = 1_790_000_000_000
SEED = """
INSERT INTO users (id, realm, username, created_ms, failure_count)
VALUES ('bench-user', '/', 'bench', 0, 0);
INSERT INTO devices (id, realm, user_id, mechanism_uid, secret, push_token, device_type,
    communication_type, name, status, created_ms, updated_ms)
VALUES ('bench-device', '/', 'bench-user', 'bench-mech', '\\x01', 't', 'android', 'gcm',
    'bench', 'active', 0, 0);
-- Row i is old (past retention) when i is even, else recent.
INSERT INTO sessions (id, realm, username, user_id, status, title, push_type,
    notification_count, created_ms, expires_ms, updated_ms, failure_count)
SELECT 's' || i, '/', 'bench', 'bench-user', CASE WHEN i % 50 = 1 THEN 'PENDING'
    ELSE 'APPROVED' END, 'Sign in', 'default', 1, t, t + 60000, t, 0
FROM (SELECT i, CASE WHEN i % 2 = 0 THEN $1::bigint - 40 * $2::bigint - i
    ELSE $1::bigint - i END AS t FROM generate_series(1, $3::int) AS i) AS g;
INSERT INTO notifications (message_id, session_id, device_id, challenge, created_ms)
SELECT 'm' || i, 's' || i, 'bench-device', '\\x00', 0 FROM generate_series(1, $3::int) AS i;
INSERT INTO outbox (kind, realm, idempotency_key, payload, state, attempts, next_attempt_ms,
    created_ms, updated_ms)
SELECT 'bench', '/', 'k' || i, '{}', 'done', 1, 0, t, t
FROM (SELECT i, CASE WHEN i % 2 = 0 THEN $1::bigint - 40 * $2::bigint
    ELSE $1::bigint - i END AS t FROM generate_series(1, $3::int) AS i) AS g;
INSERT INTO audit (realm, at_ms, event, subject, data)
SELECT '/', CASE WHEN i % 2 = 0 THEN $1::bigint - 400 * $2::bigint ELSE $1::bigint - i END,
    'bench', 's' || i, '{}'
FROM generate_series(1, $3::int) AS i;
"""


async def _database(admin_url: str) -> tuple[str, str]:
    name = "pushgate_purge_" + secrets.token_hex(4)
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, f"{admin_url.rsplit('/', 1)[0]}/{name}"


async def _drop(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _seed(url: str, size: int, *, vacuum: bool) -> float:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(url)
    started = time.perf_counter()
    try:
        # Our own integers, put into the text: the statements differ in the ones they use.
        text = SEED.replace("$1", str(NOW)).replace("$2", str(DAY_MS)).replace("$3", str(size))
        await conn.execute(text)
        if vacuum:
            # Rows past retention are weeks old: autovacuum has long since visited their pages
            # and set their hint bits. Without this, a batch also pays for the first read of
            # freshly written pages, once, which is a cost of the bulk load and not of purging.
            await conn.execute("VACUUM (FREEZE, ANALYZE)")
        else:
            await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def _plans(url: str, batch: int) -> dict[str, str]:
    """The first line that names an index in each statement's plan."""
    limits = cutoffs("/", _policy(), NOW)
    statements = {
        "sessions": (sql.DOOMED_SESSIONS, limits.realm, limits.sessions_ms, batch),
        "outbox": (sql.DELETE_OUTBOX, limits.realm, limits.outbox_ms, batch),
        "audit": (sql.DELETE_AUDIT, limits.realm, limits.audit_ms, batch),
    }
    conn = await asyncpg.connect(url)
    found = {}
    try:
        for name, (statement, *args) in statements.items():
            # EXPLAIN without ANALYZE plans the DELETE but does not run it.
            lines = [r[0].strip() for r in await conn.fetch("EXPLAIN " + statement, *args)]
            found[name] = next((line for line in lines if " using " in line), lines[0])
    finally:
        await conn.close()
    return found


def _policy() -> RealmPolicy:
    return RealmPolicy()


async def _batches(url: str, batch: int, repeat: int) -> list[float]:
    store = PostgresStore(url, Sealer(base64.b64decode(base64.b64encode(b"k" * 32))))
    limits = cutoffs("/", _policy(), NOW)
    times = []
    try:
        for _ in range(repeat):
            started = time.perf_counter()
            async with store.autocommit() as db:
                counts = await db.retention.purge(limits, batch)
            times.append(time.perf_counter() - started)
            assert counts.sessions == batch and counts.audit == batch, counts
    finally:
        await store.aclose()
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--no-vacuum", action="store_true", help="purge freshly loaded pages, as before"
    )
    args = parser.parse_args()
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        name, url = await _database(args.admin_url)
        try:
            seeded = await _seed(url, size, vacuum=not args.no_vacuum)
            plans = await _plans(url, args.batch)
            times = await _batches(url, args.batch, args.repeat)
        finally:
            await _drop(args.admin_url, name)
        results.append(
            {
                "rowsPerTable": size,
                "batch": args.batch,
                "vacuumed": not args.no_vacuum,
                "seedSeconds": round(seeded, 1),
                "batchMsMedian": round(statistics.median(times) * 1000, 1),
                "batchMsBest": round(min(times) * 1000, 1),
                # A long backlog: later batches pass the index entries earlier ones deleted.
                "batchMsFirstLast": [round(times[0] * 1000, 1), round(times[-1] * 1000, 1)],
                "plans": plans,
            }
        )
        print(json.dumps(results[-1], indent=2))


if __name__ == "__main__":
    asyncio.run(main())
