"""F1 (security.md §9): `kill -9` of a `pushgate serve` process while clients approve, deny and
cancel, then a restart. Checked on the clients' own record (tests/crash/history.py): every
answer that got a 2xx is there after the restart, no session is seen in two terminal states or
has two terminal operations succeed, and every webhook is delivered: the rows the dead process
had claimed are taken again once their lease runs out, and none stays pending.
"""

from __future__ import annotations

import random
from pathlib import Path

import anyio
import httpx
import pytest

from tests.cluster.support import admin_services, fresh_database
from tests.crash.history import Op, violations
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

USERS = 40
SPREAD_SECONDS = 1.0  # the answers are sent over this long ...
KILL_AFTER_SECONDS = 0.4  # ... and the server dies this far in
LEASE_MARGIN_SECONDS = 15.0


async def test_f1_kill_9_while_clients_answer_then_restart(tmp_path: Path) -> None:
    rng = random.Random(1)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    async with (
        fresh_database("pushgate_crash_") as url,
        receiving() as receiver,
        httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=100)) as http,
    ):
        admin = admin_services(url, base)
        try:
            key = await prepare(admin, receiver)
            rp = httpx.AsyncClient(headers={"X-API-Key": key}, timeout=10)
            clients = Clients(base, rp)
            async with pushgate_serve(url, log, port=port, **SERVER_ENV) as server:
                people = await users(admin, http, USERS)
                sessions = {u.name: await clients.create(u) for u in people}
                assert all(sessions.values())

                async def act_later(user: User, session: str) -> None:
                    await anyio.sleep(rng.uniform(0, SPREAD_SECONDS))
                    await clients.act(user, session, rng)
                    await clients.read(session)

                async with anyio.create_task_group() as tasks:
                    for user in people:
                        tasks.start_soon(act_later, user, sessions[user.name])
                    await anyio.sleep(KILL_AFTER_SECONDS)
                    await server.kill()
            lost = [e for e in clients.history.events if e.status is None]
            answered = [e for e in clients.history.events if e.op is not Op.CREATE and e.ok]
            assert lost and answered  # the kill landed in the middle of the load

            async with pushgate_serve(url, log, port=port, **SERVER_ENV):
                # What was left pending gets an answer from the restarted server.
                for user in people:
                    session = sessions[user.name]
                    assert session is not None
                    if await clients.read(session) == "sent":
                        await clients.act(user, session, rng)
                for session in sessions.values():
                    assert session is not None
                    await clients.read(session)
                states = await outbox_states(url, LEASE_MARGIN_SECONDS)
                await until_announced(receiver, clients, LEASE_MARGIN_SECONDS)
            await rp.aclose()
        finally:
            await admin.store.aclose()

    assert violations(clients.history, crashes=True, webhooks=announced(receiver)) == []
    assert set(states) == {"done"}, states  # no row stuck, none given up on
