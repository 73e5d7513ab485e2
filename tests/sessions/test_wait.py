"""Relying parties waiting for an answer: woken by the transition itself, in this process and,
on PostgreSQL, from another process through LISTEN/NOTIFY."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from sqlalchemy import func, select

from pushgate.services import Services
from pushgate.sessions.model import PushSession, SessionStatus
from pushgate.settings import Settings
from pushgate.store.engine import create_engine
from pushgate.store.postgres.listen import FINISHED_CHANNEL
from pushgate.wiring import build_services
from tests.outbox.support import pending_session
from tests.support import FakeClock

NEVER = 3600.0  # a recheck interval no test waits for: only a wake-up can end the wait


@pytest.fixture
async def patient(
    settings: Settings, clock: FakeClock, services: Services
) -> AsyncIterator[Services]:
    """A second set of services on the same database ("another process") that never rechecks."""
    other = build_services(settings.model_copy(update={"wait_recheck_seconds": NEVER}), clock)
    try:
        yield other
    finally:
        await other.store.aclose()


async def test_a_finished_session_returns_at_once(services: Services) -> None:
    session = await pending_session(services)
    await services.sessions.cancel("/", session.id)
    with anyio.fail_after(5):
        waited = await services.sessions.wait("/", session.id, NEVER)
    assert waited.status is SessionStatus.CANCELED


async def test_a_wait_times_out_with_the_session_still_sent(services: Services) -> None:
    session = await pending_session(services)
    waited = await services.sessions.wait("/", session.id, 0.05)
    assert waited.status is SessionStatus.PENDING


async def test_woken_in_process_by_the_transition(patient: Services, services: Services) -> None:
    session = await pending_session(patient)
    results: list[PushSession] = []

    async def waiter() -> None:
        results.append(await patient.sessions.wait("/", session.id, 30))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(waiter)
        while patient.events.waiting == 0:
            await anyio.sleep(0.001)
        await patient.sessions.cancel("/", session.id)
    assert [r.status for r in results] == [SessionStatus.CANCELED]
    assert patient.events.waiting == 0


async def test_expiry_ends_a_wait(patient: Services, clock: FakeClock) -> None:
    session = await pending_session(patient)
    clock.advance(61)
    with anyio.fail_after(5):
        waited = await patient.sessions.wait("/", session.id, NEVER)
    assert waited.status is SessionStatus.EXPIRED


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # LISTEN/NOTIFY is PG's
async def test_woken_across_processes_by_notify(services: Services, patient: Services) -> None:
    session = await pending_session(services)
    results: list[PushSession] = []
    probe_seen = anyio.Event()

    def publish(session_id: str) -> None:
        if session_id == "probe":
            probe_seen.set()
        patient.events.publish(session_id)

    async def waiter() -> None:
        results.append(await patient.sessions.wait("/", session.id, 30))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(patient.store.watch_finished, publish)
            # Send probes until the listener hears one: from then on nothing is missed.
            engine = create_engine(services.settings.database_url)
            try:
                while not probe_seen.is_set():
                    async with engine.begin() as conn:
                        await conn.execute(select(func.pg_notify(FINISHED_CHANNEL, "probe")))
                    with anyio.move_on_after(0.05):
                        await probe_seen.wait()
            finally:
                await engine.dispose()
            tasks.start_soon(waiter)
            while patient.events.waiting == 0:
                await anyio.sleep(0.001)
            await services.sessions.cancel("/", session.id)  # the *other* process
            while not results:
                await anyio.sleep(0.001)
            tasks.cancel_scope.cancel()
    assert [r.status for r in results] == [SessionStatus.CANCELED]


async def test_wait_parameter_is_validated(client: httpx.AsyncClient, services: Services) -> None:
    key = await services.accounts.create_api_key("/")
    session = await pending_session(services)
    headers = {"X-API-Key": key.key}
    for bad in ("abc", "-1", "61", "1.5"):
        reply = await client.get(f"/v1/push/sessions/{session.id}?wait={bad}", headers=headers)
        assert reply.status_code == 400, bad
        assert reply.json()["code"] == "invalidRequest"
    await services.sessions.cancel("/", session.id)
    reply = await client.get(f"/v1/push/sessions/{session.id}?wait=30", headers=headers)
    assert reply.status_code == 200
    assert reply.json()["status"] == "canceled"
