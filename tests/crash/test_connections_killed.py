"""F3 (security.md §9, the CI variant): every PostgreSQL connection of a running `pushgate
serve` killed with `pg_terminate_backend()`, again and again, while clients create, answer,
cancel and read. Requests caught by it fail with 503, never a 500 and never a 2xx that did not
happen (the history checker, tests/crash/history.py); afterwards the same process serves the
whole cycle again, its listener and outbox worker included, without a restart.
"""

from __future__ import annotations

import random
from pathlib import Path

import anyio
import asyncpg
import httpx
import pytest

from tests.cluster.support import admin_services, fresh_database
from tests.crash.history import UNAVAILABLE, Op, violations
from tests.crash.load import (
    SERVER_ENV,
    Clients,
    User,
    announced,
    outbox_states,
    prepare,
    until_announced,
    users,
)
from tests.relying.support import free_port, pushgate_serve
from tests.webhooks.receiver import receiving

pytestmark = pytest.mark.postgres

USERS = 24
KILLS = 6
KILL_EVERY_SECONDS = 0.4
RECOVERY_SECONDS = 15.0
TERMINATE = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


async def test_f3_connections_killed_mid_load_fail_with_503_and_recover(tmp_path: Path) -> None:
    rng = random.Random(3)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with (
        fresh_database("pushgate_crash_") as url,
        receiving() as receiver,
        httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=100)) as http,
    ):
        admin = admin_services(url, base)
        try:
            key = await prepare(admin, receiver)
            async with (
                pushgate_serve(url, tmp_path / "server.log", port=port, **SERVER_ENV),
                httpx.AsyncClient(headers={"X-API-Key": key}, timeout=10) as rp,
            ):
                clients = Clients(base, rp)
                people = await users(admin, http, USERS)
                killed = await _load_while_killing(url, clients, people, rng)
                assert killed > 0
                assert any(e.status == UNAVAILABLE for e in clients.history.events)

                # The same process serves again: every cycle from now on succeeds.
                await _until_a_cycle_succeeds(clients, people[0], rng)
                before = len(clients.history.events)
                for user in people:
                    await _cycle(clients, user, rng)
                after = clients.history.events[before:]
                assert [e for e in after if not e.ok and e.status not in (400, 409)] == []
                for session in clients.history.sessions():
                    await clients.read(session)
                states = await outbox_states(url, RECOVERY_SECONDS)
                await until_announced(receiver, clients, RECOVERY_SECONDS)
        finally:
            await admin.store.aclose()

    assert violations(clients.history, crashes=False, webhooks=announced(receiver)) == []
    assert set(states) == {"done"}, states


async def _load_while_killing(
    url: str, clients: Clients, people: list[User], rng: random.Random
) -> int:
    """Each user's client runs cycles until the killer is done; the killer terminates every
    connection of the database KILLS times. Returns how many backends it ended."""
    done = anyio.Event()
    killed = 0

    async def client(user: User) -> None:
        while not done.is_set():
            await _cycle(clients, user, rng)

    async def killer() -> None:
        nonlocal killed
        conn = await asyncpg.connect(url)
        try:
            for _ in range(KILLS):
                await anyio.sleep(KILL_EVERY_SECONDS)
                killed += await conn.fetchval(TERMINATE)
        finally:
            await conn.close()
            done.set()

    async with anyio.create_task_group() as tasks:
        for user in people:
            tasks.start_soon(client, user)
        tasks.start_soon(killer)
    return killed


async def _cycle(clients: Clients, user: User, rng: random.Random) -> None:
    session = await clients.create(user)
    if session is None:
        await anyio.sleep(0.05)  # the database is away: do not spin
        return
    await clients.act(user, session, rng)
    await clients.read(session)


async def _until_a_cycle_succeeds(clients: Clients, user: User, rng: random.Random) -> None:
    with anyio.fail_after(RECOVERY_SECONDS):
        while True:
            before = len(clients.history.events)
            await _cycle(clients, user, rng)
            events = clients.history.events[before:]
            if all(e.ok or e.status in (400, 409) for e in events) and events[0].op is Op.CREATE:
                return
            await anyio.sleep(0.1)
