"""The unit of work's outbox, on SQLite and PostgreSQL alike (`store/ports.py`): the first
row of a kind and key is kept, and rows are leased to one worker at a time, then
completed, retried or buried only by their lease's owner.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from pushgate.outbox.model import OutboxMessage, OutboxState
from pushgate.store import schema
from pushgate.store.ports import Store
from tests.store.support import KIND, LEASE, NOW, message, open_store, table
from tests.support import empty_database_at


async def test_outbox_add_keeps_the_first_of_a_kind_and_key(
    store: Store, database_url: str
) -> None:
    async with store.autocommit() as db:
        await db.outbox.add([message("k"), message("k", kind="other.kind")], NOW)
        await db.outbox.add([OutboxMessage(KIND, "/", "k", {"second": True}), message("j")], NOW)
        await db.outbox.add([message("i"), message("i")], NOW)
        await db.outbox.add([], NOW)
    found = await table(database_url, schema.outbox)
    assert sorted((r["kind"], r["idempotency_key"]) for r in found) == [
        ("other.kind", "k"),
        (KIND, "i"),
        (KIND, "j"),
        (KIND, "k"),
    ]
    [first] = [r for r in found if (r["kind"], r["idempotency_key"]) == (KIND, "k")]
    assert first["payload"] == '{"key":"k"}'


async def test_claim_leases_due_rows_oldest_first_and_counts_attempts(store: Store) -> None:
    async with store.autocommit() as db:
        await db.outbox.add([message("late", not_before_ms=NOW + 5)], NOW)
        await db.outbox.add([message("first")], NOW - 2)
        await db.outbox.add([message("second")], NOW - 1)
        await db.outbox.add([message("elsewhere", kind="other.kind")], NOW - 3)
        await db.outbox.add([message("future", not_before_ms=NOW + 60_000)], NOW)
        claimed = await db.outbox.claim([KIND], "w1", NOW + 5, LEASE, 2)
        rest = await db.outbox.claim([KIND], "w1", NOW + 5, LEASE, 10)
        assert await db.outbox.claim([], "w1", NOW + 5, LEASE, 10) == []
    assert [r.key for r in claimed] == ["first", "second"]
    assert [r.key for r in rest] == ["late"]
    row = claimed[0]
    assert (row.kind, row.realm, row.payload, row.state) == (
        KIND,
        "/",
        {"key": "first"},
        OutboxState.PENDING,
    )
    assert (row.lease_owner, row.lease_until_ms, row.attempts) == ("w1", NOW + 5 + LEASE, 1)
    assert (row.created_ms, row.updated_ms, row.next_attempt_ms) == (NOW - 2, NOW + 5, NOW - 2)


async def test_a_held_lease_is_not_claimable_until_it_expires(store: Store) -> None:
    async with store.autocommit() as db:
        await db.outbox.add([message("x")], NOW)
        [held] = await db.outbox.claim([KIND], "w1", NOW, LEASE, 10)
        assert await db.outbox.claim([KIND], "w2", NOW + LEASE - 1, LEASE, 10) == []
        [taken] = await db.outbox.claim([KIND], "w2", NOW + LEASE, LEASE, 10)
        assert (taken.id, taken.lease_owner, taken.attempts) == (held.id, "w2", 2)
        # The first owner lost its lease: nothing it does changes the row.
        assert not await db.outbox.complete(held.id, "w1", NOW + LEASE + 1)
        assert not await db.outbox.retry(held.id, "w1", NOW + LEASE + 1, NOW, "late")
        assert not await db.outbox.bury(held.id, "w1", NOW + LEASE + 1, "late")
        assert await db.outbox.get(held.id) == taken


async def test_complete_marks_done_once(store: Store) -> None:
    async with store.autocommit() as db:
        await db.outbox.add([message("x")], NOW)
        [row] = await db.outbox.claim([KIND], "w1", NOW, LEASE, 10)
        assert await db.outbox.complete(row.id, "w1", NOW + 1)
        assert not await db.outbox.complete(row.id, "w1", NOW + 2)
        done = await db.outbox.get(row.id)
        assert await db.outbox.claim([KIND], "w2", NOW + 10 * LEASE, LEASE, 10) == []
        assert await db.outbox.get(row.id + 1000) is None
    assert done is not None
    assert (done.state, done.lease_owner, done.lease_until_ms, done.updated_ms) == (
        OutboxState.DONE,
        None,
        None,
        NOW + 1,
    )


async def test_retry_releases_the_row_until_its_next_attempt(store: Store) -> None:
    async with store.autocommit() as db:
        await db.outbox.add([message("x")], NOW)
        [row] = await db.outbox.claim([KIND], "w1", NOW, LEASE, 10)
        assert not await db.outbox.retry(row.id, "w2", NOW + 1, NOW + 500, "not mine")
        assert await db.outbox.retry(row.id, "w1", NOW + 1, NOW + 500, "boom " * 400)
        retried = await db.outbox.get(row.id)
        assert await db.outbox.claim([KIND], "w2", NOW + 499, LEASE, 10) == []
        [again] = await db.outbox.claim([KIND], "w2", NOW + 500, LEASE, 10)
    assert retried is not None
    assert (retried.state, retried.lease_owner, retried.lease_until_ms) == (
        OutboxState.PENDING,
        None,
        None,
    )
    assert retried.next_attempt_ms == NOW + 500
    assert retried.last_error is not None
    assert retried.last_error.startswith("boom ")
    assert len(retried.last_error) <= 1000
    assert (again.attempts, again.lease_owner, again.last_error) == (2, "w2", retried.last_error)


async def test_bury_makes_a_row_dead_for_good(store: Store) -> None:
    async with store.autocommit() as db:
        await db.outbox.add([message("x")], NOW)
        [row] = await db.outbox.claim([KIND], "w1", NOW, LEASE, 10)
        assert not await db.outbox.bury(row.id, "w2", NOW + 1, "not mine")
        assert await db.outbox.bury(row.id, "w1", NOW + 1, "refused")
        dead = await db.outbox.get(row.id)
        assert await db.outbox.claim([KIND], "w1", NOW + 10 * LEASE, LEASE, 10) == []
        assert not await db.outbox.complete(row.id, "w1", NOW + 2)
    assert dead is not None
    assert (dead.state, dead.last_error, dead.lease_owner) == (OutboxState.DEAD, "refused", None)


async def test_outbox_stats(store: Store) -> None:
    async with store.autocommit() as db:
        empty_stats = await db.outbox.stats(NOW)
        await db.outbox.add([message(k) for k in "abcd"], NOW)
        await db.outbox.add([message("e", not_before_ms=NOW - 50)], NOW)
        claimed = await db.outbox.claim([KIND], "w1", NOW, LEASE, 3)
        by_key = {r.key: r for r in claimed}
        assert await db.outbox.complete(by_key["e"].id, "w1", NOW)
        assert await db.outbox.bury(by_key["a"].id, "w1", NOW, "refused")
        stats = await db.outbox.stats(NOW)
    assert (empty_stats.pending, empty_stats.dead, empty_stats.oldest_due_ms) == (0, 0, None)
    assert (stats.pending, stats.dead, stats.oldest_due_ms) == (3, 1, NOW)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.postgres
async def test_concurrent_claims_never_share_a_row(database_url: str) -> None:
    """Two workers, each on its own pool, claim in a loop at the same time until nothing is
    left: every row goes to exactly one of them."""
    await empty_database_at(database_url)
    workers = {"a": open_store(database_url), "b": open_store(database_url)}
    rows_per_round, rounds = 300, 5

    async def claim_all(owner: str, start: anyio.Event, claimed: list[int]) -> None:
        await start.wait()
        while True:
            async with workers[owner].autocommit() as db:
                rows = await db.outbox.claim([KIND], owner, NOW, 10 * LEASE, 7)
            if not rows:
                return
            claimed.extend(r.id for r in rows)

    try:
        for round_ in range(rounds):
            async with workers["a"].autocommit() as db:
                await db.outbox.add([message(f"{round_}:{i}") for i in range(rows_per_round)], NOW)
            claimed: dict[str, list[int]] = {"a": [], "b": []}
            start = anyio.Event()
            async with anyio.create_task_group() as tasks:
                for owner in workers:
                    tasks.start_soon(claim_all, owner, start, claimed[owner])
                await anyio.sleep(0.01)
                start.set()
            both: Sequence[int] = claimed["a"] + claimed["b"]
            assert len(both) == len(set(both)) == rows_per_round
            assert claimed["a"]
            assert claimed["b"]
    finally:
        for store in workers.values():
            await store.aclose()
