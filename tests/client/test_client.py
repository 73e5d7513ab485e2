"""`pushgate.client` against a live server (uvicorn on loopback), sync and async alike: the
sync client runs in a worker thread, so the server keeps its event loop."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import anyio
import pytest

from pushgate.client import ApiError, AsyncPushgateClient, PushgateClient, Session
from pushgate.services import Services
from pushgate.settings import Settings
from tests.api.test_rp_events import LiveApi, live
from tests.support import FakeClock

FLAVORS = ["sync", "async"]


class Flavor:
    """One client, whichever kind, behind the same awaitable calls."""

    def __init__(self, client: PushgateClient | AsyncPushgateClient) -> None:
        self.client = client

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        call = getattr(self.client, method)
        if isinstance(self.client, AsyncPushgateClient):
            return await call(*args, **kwargs)
        return await anyio.to_thread.run_sync(functools.partial(call, *args, **kwargs))

    async def events(self, session_id: str, seen: list[Session]) -> None:
        """Every session the stream yields, appended as it comes."""
        client = self.client
        if isinstance(client, AsyncPushgateClient):
            async for session in client.events(session_id):
                seen.append(session)
            return
        assert isinstance(client, PushgateClient)

        def follow() -> None:
            for session in client.events(session_id):
                seen.append(session)

        await anyio.to_thread.run_sync(follow)


@asynccontextmanager
async def rp(flavor: str, api: LiveApi, key: str) -> AsyncIterator[Flavor]:
    if flavor == "async":
        async with AsyncPushgateClient(api.base_url, key) as client:
            yield Flavor(client)
    else:
        with PushgateClient(api.base_url, key) as sync_client:
            yield Flavor(sync_client)


async def phone_for(api: LiveApi, username: str = "alice") -> Any:
    await api.user("/", username)
    return await api.register("/", username)


async def until(condition: Any) -> None:
    with anyio.fail_after(10):
        while not condition():
            await anyio.sleep(0.005)


@pytest.mark.parametrize("flavor", FLAVORS)
async def test_create_get_cancel(
    flavor: str, settings: Settings, clock: FakeClock, services: Services
) -> None:
    async with live(settings, clock) as api:
        key = await api.key()
        await phone_for(api)
        async with rp(flavor, api, key) as client:
            created = await client(
                "create",
                "alice",
                notification={"title": "Sign in", "body": "to Acme"},
                seconds_to_expire=120,
            )
            assert (created.status, created.notification_count, created.terminal) == (
                "sent",
                1,
                False,
            )
            assert isinstance(created.expires_at, datetime)
            assert (created.expires_at - created.updated_at).total_seconds() == 120
            wire = (await api.get_session(key, created.id)).json()
            assert created.raw == wire
            assert await client("get", created.id) == created
            canceled = await client("cancel", created.id)
            assert (canceled.status, canceled.terminal) == ("canceled", True)
            assert canceled.raw == (await api.get_session(key, created.id)).json()


@pytest.mark.parametrize("flavor", FLAVORS)
async def test_wait_returns_the_answer(
    flavor: str, settings: Settings, clock: FakeClock, services: Services
) -> None:
    async with live(settings, clock) as api:
        key = await api.key()
        phone = await phone_for(api)
        async with rp(flavor, api, key) as client:
            session = await client("create", "alice")
            push = await api.push(phone)
            results: list[Session] = []
            with anyio.fail_after(20):
                async with anyio.create_task_group() as tasks:

                    async def wait() -> None:
                        results.append(await client("wait", session.id, 30))

                    tasks.start_soon(wait)
                    await until(lambda: api.services.events.waiting)  # the wait has begun
                    assert (await api.answer(phone, push, detail="yes")).status_code == 200
            assert [(s.status, s.detail) for s in results] == [("accepted", "yes")]


@pytest.mark.parametrize("flavor", FLAVORS)
async def test_wait_gives_up_after_its_timeout(
    flavor: str, settings: Settings, clock: FakeClock, services: Services
) -> None:
    async with live(settings, clock) as api:
        key = await api.key()
        await phone_for(api)
        async with rp(flavor, api, key) as client:
            session = await client("create", "alice")
            with anyio.fail_after(10):
                waited = await client("wait", session.id, 1.2)
            assert waited.status == "sent"


@pytest.mark.parametrize("flavor", FLAVORS)
async def test_events_until_the_end(
    flavor: str, settings: Settings, clock: FakeClock, services: Services
) -> None:
    async with live(settings, clock) as api:
        key = await api.key()
        phone = await phone_for(api)
        async with rp(flavor, api, key) as client:
            session = await client("create", "alice")
            push = await api.push(phone)
            seen: list[Session] = []
            with anyio.fail_after(20):
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(client.events, session.id, seen)
                    await until(lambda: seen)
                    assert (await api.answer(phone, push, approve=False)).status_code == 200
            assert [s.status for s in seen] == ["sent", "rejected"]
            assert seen[-1].raw == (await api.get_session(key, session.id)).json()
            # A finished session: one event, and the iteration ends.
            again: list[Session] = []
            with anyio.fail_after(10):
                await client.events(session.id, again)
            assert again == seen[-1:]
            assert api.services.events.waiting == 0


@pytest.mark.parametrize("flavor", FLAVORS)
async def test_refusals_are_api_errors(
    flavor: str, settings: Settings, clock: FakeClock, services: Services
) -> None:
    async with live(settings, clock) as api:
        key = await api.key()
        await phone_for(api)
        unknown = "00000000-0000-4000-8000-000000000000"
        async with rp(flavor, api, "not-a-key") as stranger:
            with pytest.raises(ApiError) as refused:
                await stranger("get", unknown)
            assert (refused.value.status, refused.value.code) == (401, "unauthorized")
            with pytest.raises(ApiError) as refused:
                await stranger.events(unknown, [])
            assert refused.value.status == 401
        async with rp(flavor, api, key) as client:
            for call in (("get", unknown), ("cancel", unknown), ("get", "../../healthz")):
                with pytest.raises(ApiError) as refused:
                    await client(*call)
                assert (refused.value.status, refused.value.code) == (404, "badRequest"), call
            with pytest.raises(ApiError) as refused:
                await client.events(unknown, [])
            assert refused.value.status == 404
            with pytest.raises(ApiError) as refused:
                await client("create", "alice", seconds_to_expire=-5)
            assert (refused.value.status, refused.value.code) == (400, "invalidRequest")
            assert refused.value.message.startswith("secondsToExpire")
            session = await client("create", "alice")
            await client("cancel", session.id)
            with pytest.raises(ApiError) as refused:
                await client("cancel", session.id)
            assert refused.value.status == 409
            assert refused.value.retry_after is None


@pytest.mark.parametrize("flavor", FLAVORS)
async def test_rate_limited_creates_carry_retry_after(
    flavor: str, settings: Settings, clock: FakeClock, services: Services
) -> None:
    async with live(settings, clock) as api:
        key = await api.key()
        await phone_for(api)
        async with rp(flavor, api, key) as client:
            with pytest.raises(ApiError) as refused:
                for _ in range(100):
                    session = await client("create", "alice")
                    if not session.terminal:
                        await client("cancel", session.id)
            assert (refused.value.status, refused.value.code) == (429, "rateLimited")
            assert refused.value.retry_after is not None
            assert refused.value.retry_after > 0
