"""The outbox and its worker (issue 6 "Must hold"): a row committed with a transition is
handled once per success; a failing handler is retried with backoff and dead-lettered after
the limit; a lost race writes no row; on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from pushgate.errors import Conflict
from pushgate.outbox.model import OutboxRow, OutboxState, RetryPolicy
from pushgate.outbox.worker import GiveUp, OutboxWorker, Outcome, Retry, WorkerSettings
from pushgate.services import Services
from pushgate.store import schema
from tests.api.helpers import connect
from tests.outbox.support import KIND, pending_session
from tests.support import FakeClock


async def _rows(services: Services) -> list[dict[str, object]]:
    async with connect(services) as conn:
        found = await conn.execute(select(schema.outbox).order_by(schema.outbox.c.id))
        return [dict(r._mapping) for r in found]


class Recorder:
    def __init__(self, outcomes: list[Outcome] | None = None) -> None:
        self.seen: list[OutboxRow] = []
        self._outcomes = outcomes or []

    async def __call__(self, row: OutboxRow) -> Outcome:
        self.seen.append(row)
        return self._outcomes.pop(0) if self._outcomes else None


async def test_rows_commit_with_the_change_and_are_handled_once(
    followed: Services, clock: FakeClock
) -> None:
    session = await pending_session(followed)
    await followed.sessions.cancel("/", session.id)
    rows = await _rows(followed)
    assert [r["idempotency_key"] for r in rows] == [f"{session.id}:created", f"{session.id}:cancel"]
    assert all(r["state"] == "pending" and r["attempts"] == 0 for r in rows)

    handler = Recorder()
    worker = OutboxWorker(followed.store, clock, {KIND: handler})
    assert await worker.run_once() == 2
    assert await worker.run_once() == 0
    clock.advance(3600)
    assert await worker.run_once() == 0
    assert sorted(row.key for row in handler.seen) == sorted(r["idempotency_key"] for r in rows)
    assert {row.payload["status"] for row in handler.seen} == {"sent", "canceled"}
    assert [r["state"] for r in await _rows(followed)] == ["done", "done"]


async def test_a_lost_race_writes_no_row(followed: Services) -> None:
    session = await pending_session(followed)
    await followed.sessions.cancel("/", session.id)
    with pytest.raises(Conflict):
        await followed.sessions.cancel("/", session.id)
    keys = [r["idempotency_key"] for r in await _rows(followed)]
    assert keys == [f"{session.id}:created", f"{session.id}:cancel"]


async def test_expiry_writes_its_rows(followed: Services, clock: FakeClock) -> None:
    session = await pending_session(followed)
    clock.advance(61)
    assert await followed.sessions.expire_due() == 1
    rows = await _rows(followed)
    assert rows[-1]["idempotency_key"] == f"{session.id}:expire"
    # Reading it afterwards finds it expired and writes nothing more.
    assert (await followed.sessions.get("/", session.id)).status.wire == "expired"
    assert len(await _rows(followed)) == 2


async def test_a_late_read_expires_once(followed: Services, clock: FakeClock) -> None:
    session = await pending_session(followed)
    clock.advance(61)
    assert (await followed.sessions.get("/", session.id)).status.wire == "expired"
    assert (await followed.sessions.get("/", session.id)).status.wire == "expired"
    assert await followed.sessions.expire_due() == 0
    keys = [r["idempotency_key"] for r in await _rows(followed)]
    assert keys == [f"{session.id}:created", f"{session.id}:expire"]


async def test_failures_back_off_then_dead_letter(followed: Services, clock: FakeClock) -> None:
    await pending_session(followed)
    handler = Recorder([Retry("provider down"), Retry("provider down"), Retry("provider down")])
    policy = RetryPolicy(base_ms=1_000, cap_ms=60_000, max_attempts=3)
    worker = OutboxWorker(followed.store, clock, {KIND: handler}, policy=policy)

    assert await worker.run_once() == 1
    [row] = await _rows(followed)
    assert row["state"] == "pending" and row["attempts"] == 1
    assert row["last_error"] == "provider down"
    assert row["next_attempt_ms"] > clock.ms  # backoff: not due at once
    assert row["lease_owner"] is None
    assert await worker.run_once() == 0  # not due yet

    clock.advance(60)
    assert await worker.run_once() == 1
    [row] = await _rows(followed)
    assert row["state"] == "pending" and row["attempts"] == 2

    clock.advance(60)
    assert await worker.run_once() == 1
    [row] = await _rows(followed)
    assert row["state"] == "dead" and row["attempts"] == 3
    clock.advance(3600)
    assert await worker.run_once() == 0
    assert len(handler.seen) == 3


async def test_retry_after_and_give_up(followed: Services, clock: FakeClock) -> None:
    await pending_session(followed)
    handler = Recorder(
        [Retry("at once", after_ms=0), Retry("429", after_ms=45_000), GiveUp("gone")]
    )
    worker = OutboxWorker(followed.store, clock, {KIND: handler})
    assert await worker.run_once() == 1
    assert await worker.run_once() == 1  # after_ms=0: due again at once, not after a backoff
    [row] = await _rows(followed)
    assert row["next_attempt_ms"] == clock.ms + 45_000
    clock.advance(44)
    assert await worker.run_once() == 0
    clock.advance(1)
    assert await worker.run_once() == 1
    [row] = await _rows(followed)
    assert row["state"] == OutboxState.DEAD.value and row["last_error"] == "gone"


async def test_a_crashing_handler_is_retried(followed: Services, clock: FakeClock) -> None:
    await pending_session(followed)
    calls = 0

    async def crashing(row: OutboxRow) -> Outcome:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return None

    worker = OutboxWorker(followed.store, clock, {KIND: crashing})
    await worker.run_once()
    [row] = await _rows(followed)
    assert row["state"] == "pending" and "boom" in str(row["last_error"])
    clock.advance(600)
    await worker.run_once()
    [row] = await _rows(followed)
    assert row["state"] == "done" and calls == 2


async def test_a_held_lease_is_not_taken(followed: Services, clock: FakeClock) -> None:
    """Another worker's live lease blocks the row; once it runs out, the row is taken."""
    await pending_session(followed)
    async with followed.store.autocommit() as db:
        [held] = await db.outbox.claim([KIND], "gone-worker", clock.ms, 30_000, 10)
    handler = Recorder()
    worker = OutboxWorker(
        followed.store, clock, {KIND: handler}, settings=WorkerSettings(lease_ms=30_000)
    )
    assert await worker.run_once() == 0
    clock.advance(31)
    assert await worker.run_once() == 1
    [row] = await _rows(followed)
    assert row["state"] == "done" and row["attempts"] == 2
    # The first worker's late answer changes nothing.
    async with followed.store.autocommit() as db:
        assert not await db.outbox.complete(held.id, "gone-worker", clock.ms)
        assert not await db.outbox.retry(held.id, "gone-worker", clock.ms, clock.ms, "late")
