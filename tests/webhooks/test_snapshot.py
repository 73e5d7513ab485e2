"""The per-process snapshot of subscriptions (issue 7: "a webhook added or removed takes effect
on running processes within 5 s"), and the fan-out rows that carry events written before a
starting process had loaded it; on SQLite and PostgreSQL."""

from __future__ import annotations

import anyio
from sqlalchemy import select

from pushgate.services import Services
from pushgate.sessions.model import Content
from pushgate.sessions.service import NewSession
from pushgate.settings import Settings
from pushgate.store import schema
from pushgate.webhooks.events import FANOUT_KIND
from pushgate.wiring import build_services
from tests.api.helpers import connect
from tests.support import FakeClock
from tests.webhooks.receiver import receiving


async def test_running_processes_see_added_and_removed_webhooks_within_5_s(
    services: Services, settings: Settings, clock: FakeClock
) -> None:
    cli = build_services(settings, clock)  # another process: `pushgate webhook add`
    directory = services.webhooks.directory
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(services.webhooks.refresher(), lambda: None)
            with anyio.fail_after(5):
                while directory.state != "loaded":
                    await anyio.sleep(0.05)
            added = await cli.webhooks.add("/", "http://127.0.0.1:9/hook")
            with anyio.fail_after(5):
                while directory.get(added.id) is None:
                    await anyio.sleep(0.05)
            assert directory.for_realm("/")[0].secret == added.secret
            await cli.webhooks.remove(added.id)
            with anyio.fail_after(5):
                while directory.get(added.id) is not None:
                    await anyio.sleep(0.05)
            tasks.cancel_scope.cancel()
    finally:
        await cli.store.aclose()


async def test_events_before_the_first_load_are_delivered_through_fan_out(
    services: Services,
) -> None:
    async with receiving() as receiver:
        created = await services.webhooks.add("/", receiver.url)
        services.webhooks.directory.expect_loading()  # the runtime starts, not loaded yet
        await services.accounts.create_user("/", "alice", None)
        failed = await services.sessions.create("/", NewSession("alice", Content("Hi"), 60))
        async with connect(services) as conn:
            kinds = [r.kind for r in await conn.execute(select(schema.outbox.c.kind))]
        assert kinds == [FANOUT_KIND]

        while await services.outbox_worker.run_once():
            pass
        await services.webhooks.sender.aclose()

        [received] = receiver.received
        event = received.verify(created.secret)
        assert (event["type"], event["data"]["id"]) == ("session.error", failed.id)
