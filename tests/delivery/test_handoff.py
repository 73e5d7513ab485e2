"""A create's pushes handed to the running worker of its own process (outbox/handoff.py): written
leased to that worker, sent without a claim or a read, and safe when the process dies between
the commit and the send (the lease runs out and any worker sends the push, once)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import httpx
import pytest

from pushgate.api.app import create_app
from pushgate.changes import SessionChange
from pushgate.delivery.model import KIND
from pushgate.outbox.model import OutboxRow, OutboxState
from pushgate.services import Services
from pushgate.sessions.model import Content, PushSession
from pushgate.sessions.service import NewSession
from pushgate.settings import Settings
from pushgate.simulator import decode_notification
from pushgate.store import schema
from pushgate.store.rows import outbox_row
from pushgate.wiring import build_services
from tests.api.helpers import Api
from tests.delivery.conftest import Providers, register
from tests.store.support import table, until
from tests.support import FakeClock, empty_database

LEASE_MS = 30_000


@pytest.fixture
def quiet_settings(push_settings: Settings) -> Settings:
    """No idle poll within a test: a row is sent at once only if it was handed over."""
    return push_settings.model_copy(update={"outbox_poll_seconds": 3600.0})


@contextlib.asynccontextmanager
async def _api(settings: Settings, clock: FakeClock) -> AsyncIterator[Api]:
    """Services of these settings on the emptied database, with their API in process."""
    built = build_services(settings, clock)
    await empty_database(built)
    app = create_app(built, close_store=False)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http:
            yield Api(http, built)
    finally:
        await built.pushes.aclose()
        await built.store.aclose()


@pytest.fixture
async def quiet(quiet_settings: Settings, clock: FakeClock) -> AsyncIterator[Api]:
    async with _api(quiet_settings, clock) as api:
        yield api


async def _create(services: Services) -> PushSession:
    return await services.sessions.create("/", NewSession("alice", Content("Sign in"), 60))


async def _rows(services: Services, session: PushSession) -> list[OutboxRow]:
    """The prompt rows of the session, as stored."""
    found = await table(services.settings.database_url, schema.outbox, schema.outbox.c.kind == KIND)
    rows = [outbox_row(r) for r in found]
    return [r for r in rows if r.payload.get("session") == session.id]


async def _running(services: Services, body: Callable[[], Awaitable[None]]) -> None:
    """`body` with the outbox worker running, as in `pushgate serve`; then the worker stops."""
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(services.outbox_worker.run)
        await until(lambda: services.outbox_worker.handoff.accepting)
        await body()
        tasks.cancel_scope.cancel()


async def test_a_create_writes_its_pushes_leased_to_its_worker_and_hands_them_over(
    quiet: Api, providers: Providers
) -> None:
    services = quiet.services
    await quiet.user("/", "alice")
    await register(quiet, providers, "gcm", "pixel")
    await register(quiet, providers, "apns", "iphone")
    handoff = services.outbox_worker.handoff
    handoff.open()  # what the running worker does; the test takes the rows itself
    session = await _create(services)

    handed = await handoff.take()
    assert len(handed) == 2
    for row in handed:
        assert isinstance(row.context, SessionChange)
        assert row.context.session.id == session.id
    stored = await _rows(services, session)
    assert {r.id for r in stored} == {r.id for r in handed}
    for row in stored:
        assert row.lease_owner == services.outbox_worker.owner
        assert row.lease_until_ms == quiet.now_ms() + LEASE_MS
        assert row.attempts == 1  # the handoff is its first attempt
    handoff.close()
    # Nobody else may take them while the lease holds: another process's claim gets nothing.
    other = build_services(services.settings, services.clock)
    try:
        assert await other.outbox_worker.run_once() == 0
    finally:
        await other.pushes.aclose()
        await other.store.aclose()
    assert providers.fcm.messages == [] and providers.apns.received == []


async def test_the_running_worker_sends_a_handed_push_at_once(
    quiet: Api, providers: Providers, clock: FakeClock
) -> None:
    services = quiet.services
    await quiet.user("/", "alice")
    phone = await register(quiet, providers, "gcm")
    created: list[PushSession] = []

    async def create_and_wait() -> None:
        created.append(await _create(services))
        written_ms = clock.now_ms()
        # Before the worker runs again (no await since the create): a claim from now on would
        # lease the row until a second later than the create wrote it.
        clock.advance(1)
        await until(lambda: len(providers.fcm.messages) == 1)
        [sent] = await _rows(services, created[0])
        assert (sent.lease_owner, sent.lease_until_ms) == (
            services.outbox_worker.owner,
            written_ms + LEASE_MS,  # the create's lease: the row was never claimed
        )

    await _running(services, create_and_wait)

    [push] = providers.pushes("gcm")
    [polled] = await quiet.pending(phone)
    assert (push["messageId"], push["message"]) == (polled.message_id, polled.jwt)
    decode_notification(phone.mechanism, push["messageId"], push["message"], quiet.now_ms())
    [row] = await _rows(services, created[0])
    # Marked done when the worker stopped; claimed by nobody (one attempt).
    assert (row.state, row.attempts, row.lease_owner) == (OutboxState.DONE, 1, None)


async def test_a_push_handed_over_in_a_process_that_died_is_sent_after_its_lease(
    quiet: Api, providers: Providers, clock: FakeClock
) -> None:
    services = quiet.services
    await quiet.user("/", "alice")
    await register(quiet, providers, "gcm")
    services.outbox_worker.handoff.open()
    session = await _create(services)  # committed, leased, handed over: then the process dies
    [row] = await _rows(services, session)

    restarted = build_services(services.settings, clock)
    try:
        assert await restarted.outbox_worker.run_once() == 0  # the dead worker's lease holds
        clock.advance(LEASE_MS / 1000)
        assert await restarted.outbox_worker.run_once() == 1
        assert await restarted.outbox_worker.run_once() == 0  # sent once
    finally:
        await restarted.pushes.aclose()
        await restarted.store.aclose()
    [push] = providers.pushes("gcm")
    assert push["messageId"] == row.payload["messageId"]
    [again] = await _rows(services, session)
    assert (again.state, again.attempts) == (OutboxState.DONE, 2)


async def test_a_stopping_worker_gives_back_the_rows_it_had_not_handled(
    quiet: Api, providers: Providers
) -> None:
    services = quiet.services
    await quiet.user("/", "alice")
    await register(quiet, providers, "gcm")
    created: list[PushSession] = []

    async def create_and_stop() -> None:
        # The worker stops as soon as it has the row: its first send waits for an OAuth token
        # and the stop comes first.
        created.append(await _create(services))

    await _running(services, create_and_stop)

    assert providers.fcm.messages == []
    [row] = await _rows(services, created[0])
    assert (row.state, row.lease_owner) == (OutboxState.PENDING, None)
    assert row.next_attempt_ms <= quiet.now_ms()  # due now, not after the lease
    assert await services.outbox_worker.run_once() == 1
    assert len(providers.fcm.messages) == 1


async def test_rows_past_the_capacity_or_without_a_running_worker_are_written_free(
    push_settings: Settings, clock: FakeClock, providers: Providers
) -> None:
    async with _api(push_settings.model_copy(update={"outbox_batch": 1}), clock) as api:
        services = api.services
        await api.user("/", "alice")
        await register(api, providers, "gcm", "pixel")
        await register(api, providers, "apns", "iphone")

        session = await _create(services)  # no worker running: nothing is leased
        assert [r.lease_owner for r in await _rows(services, session)] == [None, None]

        handoff = services.outbox_worker.handoff
        handoff.open()
        session = await _create(services)
        owners = sorted(str(r.lease_owner) for r in await _rows(services, session))
        assert owners == sorted([services.outbox_worker.owner, "None"])
        assert len(await handoff.take()) == 1
        handoff.close()
