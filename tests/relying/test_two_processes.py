"""Two `pushgate serve` processes on one PostgreSQL database (issue 7 "Must hold"; security.md
§9 E6): the creates-per-minute limit holds across them under a barrier-synchronised burst,
and a `?wait=` waiter and an event stream on one process see the device's answer given to
the other. PostgreSQL only: the user's advisory lock and LISTEN/NOTIFY are what is tested.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from pushgate.accounts.model import RealmPolicy
from pushgate.clock import SystemClock
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.simulator.client import DeviceClient
from pushgate.simulator.device import Mechanism, new_device
from pushgate.wiring import build_services
from tests.api.helpers import count_rows
from tests.relying.support import SESSIONS, free_port, pushgate_serve

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
]

BURST = 40  # creates at once, half to each process
ROUNDS = 3  # one user each: the window is a real minute on real servers
NEVER = "3600"  # no timer re-reads: only NOTIFY can bring the other process's change


@dataclass
class Pair:
    a: str
    b: str
    admin: Services  # built for B's URL, so QR codes send devices to B
    key: str


@asynccontextmanager
async def two_servers(settings: Settings, tmp_path: Path, **env: str) -> AsyncIterator[Pair]:
    port_b = free_port()
    b_url = f"http://127.0.0.1:{port_b}"
    admin = build_services(settings.model_copy(update={"public_url": b_url}), SystemClock())
    try:
        key = (await admin.accounts.create_api_key("/")).key
        async with (
            pushgate_serve(settings.database_url, tmp_path / "a.log", **env) as a,
            pushgate_serve(settings.database_url, tmp_path / "b.log", port=port_b, **env) as b,
        ):
            yield Pair(a.base_url, b.base_url, admin, key)
    finally:
        await admin.store.aclose()


async def _phone_for(pair: Pair, phone: DeviceClient, username: str) -> Mechanism:
    await pair.admin.accounts.create_user("/", username, None)
    started = await pair.admin.devices.start_registration("/", username)
    return await phone.register(started.uri)


async def test_e6_the_rate_limit_holds_across_processes(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    limit = RealmPolicy().creates_per_minute
    async with (
        two_servers(settings, tmp_path) as pair,
        DeviceClient(new_device()) as phone,
        httpx.AsyncClient(
            headers={"X-API-Key": pair.key},
            timeout=30,
            limits=httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST),
        ) as rp,
    ):
        for round_ in range(ROUNDS):
            username = f"user-{round_}"
            mechanism = await _phone_for(pair, phone, username)
            barrier = asyncio.Barrier(BURST)
            bases = [pair.a, pair.b] * (BURST // 2)
            random.shuffle(bases)

            async def create(
                base: str, user: str = username, start: asyncio.Barrier = barrier
            ) -> httpx.Response:
                await start.wait()
                return await rp.post(f"{base}{SESSIONS}", json={"user": user})

            responses = await asyncio.gather(*(create(base) for base in bases))

            admitted = [r for r in responses if r.status_code == 201]
            refused = [r for r in responses if r.status_code != 201]
            assert len(admitted) == limit, [r.status_code for r in responses]
            assert {r.status_code for r in refused} == {429}
            assert all(r.json()["code"] == "rateLimited" for r in refused)
            assert all(1 <= int(r.headers["retry-after"]) <= 60 for r in refused)
            # One pending per user held too: exactly one of the admitted is still sent.
            statuses = [
                (await rp.get(f"{pair.a}{SESSIONS}/{r.json()['id']}")).json()["status"]
                for r in admitted
            ]
            assert sorted(statuses) == ["canceled"] * (limit - 1) + ["sent"]
            assert len(await phone.pending(mechanism)) == 1
    assert await count_rows(services, "sessions") == limit * ROUNDS


async def test_a_waiter_and_a_stream_on_one_process_see_the_answer_on_the_other(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    async with (
        two_servers(
            settings,
            tmp_path,
            PUSHGATE_WAIT_RECHECK_SECONDS=NEVER,
            PUSHGATE_EVENT_STREAM_RECHECK_SECONDS=NEVER,
            PUSHGATE_API_KEY_CACHE_SECONDS="0",  # the realm's policy as set, at once
        ) as pair,
        DeviceClient(new_device()) as phone,
        httpx.AsyncClient(headers={"X-API-Key": pair.key}, timeout=30) as rp,
    ):
        await _phone_for(pair, phone, "warm-up")
        await _until_a_hears_b(pair, rp)
        await pair.admin.accounts.set_realm_policy("/", {"createsPerMinute": 3})
        alice = await _phone_for(pair, phone, "alice")

        created = await rp.post(f"{pair.a}{SESSIONS}", json={"user": "alice"})
        assert created.status_code == 201, created.text
        session_id = created.json()["id"]
        waited: list[httpx.Response] = []
        streamed: list[dict[str, Any]] = []

        async def wait_on_a() -> None:
            waited.append(await rp.get(f"{pair.a}{SESSIONS}/{session_id}?wait=30"))

        async def stream_on_a() -> None:
            url = f"{pair.a}{SESSIONS}/{session_id}/events"
            async with rp.stream("GET", url) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        streamed.append(json.loads(line.removeprefix("data: ")))

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(wait_on_a)
                tasks.start_soon(stream_on_a)
                while not streamed:  # the stream is open (its first event is out)
                    await anyio.sleep(0.01)
                await anyio.sleep(0.1)  # and the waiter is in
                assert waited == []
                (notification,) = await phone.pending(alice)  # the device talks to B only
                await phone.approve(notification)

        [answer] = waited
        assert (answer.status_code, answer.json()["status"]) == (200, "accepted")
        assert [event["status"] for event in streamed] == ["sent", "accepted"]
        assert streamed[-1] == answer.json()

        # The rate limit: creates on either process count toward one limit (3 here).
        assert (await rp.post(f"{pair.b}{SESSIONS}", json={"user": "alice"})).status_code == 201
        assert (await rp.post(f"{pair.a}{SESSIONS}", json={"user": "alice"})).status_code == 201
        for base in (pair.b, pair.a):
            refused = await rp.post(f"{base}{SESSIONS}", json={"user": "alice"})
            assert (refused.status_code, refused.json()["code"]) == (429, "rateLimited")
            assert 1 <= int(refused.headers["retry-after"]) <= 60


async def _until_a_hears_b(pair: Pair, rp: httpx.AsyncClient) -> None:
    """Return once A's LISTEN connection is up: a waiter on A sees a cancel on B within a
    second (the servers answer /healthz before their listeners connect)."""
    with anyio.fail_after(30):
        while True:
            created = await rp.post(f"{pair.b}{SESSIONS}", json={"user": "warm-up"})
            session_id = created.json()["id"]
            waited: list[httpx.Response] = []

            async def wait(session: str = session_id, into: list[httpx.Response] = waited) -> None:
                into.append(await rp.get(f"{pair.a}{SESSIONS}/{session}?wait=1"))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(wait)
                await anyio.sleep(0.1)
                url = f"{pair.b}{SESSIONS}/{session_id}"
                assert (await rp.patch(url, json={"status": "canceled"})).status_code == 200
            if waited[0].json()["status"] == "canceled":
                return
