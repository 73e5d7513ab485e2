"""The retention purge (issue 10 "Keeping it healthy") on SQLite and PostgreSQL: it deletes
finished sessions with their notifications, expired registrations, settled outbox rows, audit
rows and stale idempotency keys past each realm's limits, in batches of at most `batch` rows;
it keeps pending sessions and outbox rows and everything recent; a dry run deletes nothing.
"""

from __future__ import annotations

import anyio
import pytest

from pushgate.background import Background
from pushgate.errors import InvalidRequest
from pushgate.retention.model import PurgeCounts, cutoffs
from pushgate.retention.service import RetentionService
from pushgate.services import Services
from pushgate.store import schema
from tests.retention.support import Seeder, count
from tests.support import FakeClock

EXPECTED = PurgeCounts(
    sessions=5, notifications=10, registrations=3, outbox=4, audit=3, idempotency_keys=2
)


async def _seed(services: Services, clock: FakeClock) -> tuple[Seeder, list[str]]:
    """Old rows that must go (EXPECTED), and rows that must stay."""
    seed = Seeder(services.settings.database_url, clock.now_ms())
    await seed.user_and_device()
    # Must go: past 30 days (sessions), 7 days (outbox), 365 days (audit), 2 days (keys).
    await seed.sessions(31, "APPROVED", count=3)
    await seed.sessions(45, "EXPIRED")
    await seed.sessions(90, "DENIED")
    await seed.registrations(31, count=3)
    await seed.outbox(8, "done", count=3)
    await seed.outbox(30, "dead")
    await seed.audit(366, count=3)
    await seed.idempotency_keys(3, count=2)
    # Must stay: recent, or still pending whatever its age.
    kept = await seed.sessions(29, "APPROVED")
    kept += await seed.sessions(60, "PENDING")  # the sweeper's to expire first
    await seed.registrations(1)
    await seed.outbox(6, "done")
    await seed.outbox(30, "pending")
    await seed.audit(364)
    await seed.idempotency_keys(1)
    return seed, kept


async def _left(url: str) -> dict[str, int]:
    return {
        name: await count(url, table)
        for name, table in (
            ("sessions", schema.sessions),
            ("notifications", schema.notifications),
            ("registrations", schema.registrations),
            ("outbox", schema.outbox),
            ("audit", schema.audit),
            ("idempotency_keys", schema.idempotency_keys),
        )
    }


async def test_dry_run_counts_and_deletes_nothing(services: Services, clock: FakeClock) -> None:
    await _seed(services, clock)
    url = services.settings.database_url
    before = await _left(url)
    found = await RetentionService(services.store, clock).dry_run()
    assert sum((r.counts for r in found), PurgeCounts()) == EXPECTED
    assert await _left(url) == before


async def test_purge_deletes_in_batches_and_keeps_what_it_must(
    services: Services, clock: FakeClock
) -> None:
    _, kept = await _seed(services, clock)
    url = services.settings.database_url
    before = await _left(url)

    # One batch deletes at most `limit` of each kind, notifications with their sessions.
    limits = cutoffs("/", (await services.accounts.realm_policy("/")), clock.now_ms())
    async with services.store.autocommit() as db:
        first = await db.retention.purge(limits, 2)
    assert (first.sessions, first.notifications) == (2, 4)
    assert (first.registrations, first.outbox, first.audit) == (2, 2, 2)

    done = await RetentionService(services.store, clock, batch=2, pause_seconds=0).purge()
    assert first + sum((r.counts for r in done), PurgeCounts()) == EXPECTED
    after = await _left(url)
    assert after == {
        "sessions": 2,
        "notifications": 4,
        "registrations": 1,
        "outbox": 2,
        "audit": before["audit"] - 3 + 1,  # plus the purge's own entry
        "idempotency_keys": 1,
    }
    still = {s for s in kept if await count(url, schema.sessions, schema.sessions.c.id == s)}
    assert still == set(kept)
    assert await count(url, schema.outbox, schema.outbox.c.state == "pending") == 1
    purged = await count(url, schema.audit, schema.audit.c.event == "retention.purged")
    assert purged == 1
    # A second round finds nothing more.
    again = await RetentionService(services.store, clock).purge()
    assert sum((r.counts for r in again), PurgeCounts()) == PurgeCounts()


async def test_limits_are_per_realm(services: Services, clock: FakeClock) -> None:
    await services.accounts.create_realm("alpha")
    await services.accounts.set_realm_policy(
        "alpha", {"sessionRetentionDays": 1, "outboxRetentionDays": 1, "auditRetentionDays": 1}
    )
    url = services.settings.database_url
    alpha = Seeder(url, clock.now_ms(), "/alpha")
    root = Seeder(url, clock.now_ms(), "/")
    for seed in (alpha, root):
        await seed.user_and_device()
        await seed.sessions(2, "APPROVED")
        await seed.outbox(2, "done")
        await seed.audit(2)
    done = await RetentionService(services.store, clock).purge()
    by_realm = {r.realm: r.counts for r in done}
    assert by_realm["/alpha"] == PurgeCounts(sessions=1, notifications=2, outbox=1, audit=1)
    assert by_realm["/"] == PurgeCounts()
    only = await RetentionService(services.store, clock).dry_run("alpha")
    assert [r.realm for r in only] == ["/alpha"]


@pytest.mark.parametrize("value", [0, 3651, "7", True])
async def test_retention_settings_are_bounded(services: Services, value: object) -> None:
    with pytest.raises(InvalidRequest, match="sessionRetentionDays must be an integer"):
        await services.accounts.set_realm_policy("/", {"sessionRetentionDays": value})


async def test_the_background_runtime_purges(services: Services, clock: FakeClock) -> None:
    seed = Seeder(services.settings.database_url, clock.now_ms())
    await seed.user_and_device()
    await seed.sessions(40, "APPROVED", count=3)
    background = Background(services)
    assert "purge" in background.health()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(background.run)
        with anyio.fail_after(10):
            while await count(services.settings.database_url, schema.sessions):
                await anyio.sleep(0.02)
            while background.health()["purge"].state != "running":
                await anyio.sleep(0.02)
        tasks.cancel_scope.cancel()
