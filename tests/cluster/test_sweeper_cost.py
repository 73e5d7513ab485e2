"""The expiry sweeper's cost grows with the expiring sessions, not with all of them (issue 10):
with many finished and many far-from-due sessions in the table, the sweeper's query reads only
the due rows, through the pending-expiry index."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from pushgate.store.postgres.sessions import DUE
from tests.cluster.support import fresh_database

pytestmark = pytest.mark.postgres

NOW_MS = 1_800_000_000_000
FILL = (
    "INSERT INTO sessions (id, realm, username, status, title, push_type, notification_count,"
    " created_ms, expires_ms, updated_ms)"
    " SELECT $1 || g, '/', 'u' || (g % 100), $2, 't', 'default', 1, $3::bigint,"
    " $4::bigint + g, $3::bigint"
    " FROM generate_series(1, $5) AS g"
)


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(n for child in plan.get("Plans", []) for n in _nodes(child))]


async def test_the_sweep_reads_only_the_due_rows() -> None:
    async with fresh_database() as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(FILL, "done-", "APPROVED", NOW_MS - 10**6, NOW_MS - 10**6, 20_000)
            await conn.execute(FILL, "later-", "PENDING", NOW_MS, NOW_MS + 10**6, 20_000)
            await conn.execute(FILL, "due-", "PENDING", NOW_MS - 10**5, NOW_MS - 10**5, 30)
            await conn.execute("ANALYZE sessions")
            async with conn.transaction():
                [row] = await conn.fetch(
                    f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {DUE}", NOW_MS, 200
                )
        finally:
            await conn.close()
    plan = json.loads(row[0])[0]["Plan"]
    scans = [n for n in _nodes(plan) if n.get("Relation Name") == "sessions"]
    assert [n["Node Type"] for n in scans] == ["Index Scan"], scans
    [scan] = scans
    assert scan["Actual Rows"] == 30
    assert scan.get("Rows Removed by Filter", 0) == 0  # nothing read to be thrown away
    assert scan["Shared Hit Blocks"] + scan.get("Shared Read Blocks", 0) < 40
