"""Three `pushgate serve` processes on one fresh PostgreSQL database (issue 10 "Several nodes on
one PostgreSQL"): the whole cycle runs across them, each node in each role (a session created
on one node, polled for on the next, answered on the third, its `?wait=` waiter on the first
woken by NOTIFY alone); every webhook is delivered exactly once whichever node's outbox worker
takes it; one sweeper at a time (an advisory lock) expires each due session once; and nodes
started together on an empty database migrate it once.
"""

from __future__ import annotations

import asyncio
import collections
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import anyio
import asyncpg
import httpx
import pytest

from pushgate.simulator.client import DeviceClient
from pushgate.simulator.device import Mechanism, new_device
from pushgate.store.migrate import head_revision
from pushgate.store.postgres.sessions import SWEEPER_LOCK_KEYS
from tests.cluster.support import (
    NEVER,
    Cluster,
    admin_services,
    cluster,
    fresh_database,
    until_everyone_listens,
)
from tests.relying.support import SESSIONS, serve_environment
from tests.webhooks.receiver import Receiver, receiving

pytestmark = pytest.mark.postgres

USERS = 6  # phones, each answering one session per round
ROUNDS = 3  # every session's roles rotate, so every node plays every role
TERMINAL = {"session.accepted", "session.rejected", "session.expired", "session.canceled"}
SETTLE_SECONDS = 2.5  # past two outbox polls: a second delivery would have happened by now


def _moved(mechanism: Mechanism, issuing: str, poll: str, answer: str) -> Mechanism:
    """The same account with its poll sent to `poll` and its answers to `answer` (the nodes
    share a database, so any node serves any device)."""
    return replace(
        mechanism,
        register_url=mechanism.register_url.replace(issuing, poll, 1),
        authenticate_url=mechanism.authenticate_url.replace(issuing, answer, 1),
    )


async def _setup(url: str, receiver: Receiver) -> None:
    """Before the nodes start: a webhook for every event, and a policy that lets each user be
    asked often and deny without being locked."""
    admin = admin_services(url, "http://127.0.0.1:1")
    try:
        await admin.webhooks.add("/", receiver.url, ())
        await admin.accounts.set_realm_policy(
            "/", {"createsPerMinute": 10_000, "lockAfterFailures": 100}
        )
    finally:
        await admin.store.aclose()


async def _wait_for_webhooks(receiver: Receiver, sessions: int) -> None:
    with anyio.fail_after(30):
        while sum(r.event["type"] in TERMINAL for r in receiver.received) < sessions:
            await anyio.sleep(0.05)
    await anyio.sleep(SETTLE_SECONDS)


def _delivered_once(receiver: Receiver) -> dict[str, list[str]]:
    """Each message received once; the event types each session got."""
    ids = collections.Counter(r.id for r in receiver.received)
    assert [i for i, n in ids.items() if n > 1] == []
    per_session: dict[str, list[str]] = collections.defaultdict(list)
    for received in receiver.received:
        per_session[received.event["data"]["id"]].append(received.event["type"])
    return per_session


async def _outbox_states(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        return {row["state"] for row in await conn.fetch("SELECT DISTINCT state FROM outbox")}
    finally:
        await conn.close()


async def test_the_whole_cycle_runs_across_three_processes(tmp_path: Path) -> None:
    async with fresh_database() as url, receiving() as receiver:
        await _setup(url, receiver)
        async with (
            cluster(url, tmp_path, PUSHGATE_WAIT_RECHECK_SECONDS=NEVER) as nodes,
            httpx.AsyncClient(headers={"X-API-Key": nodes.key}, timeout=30) as rp,
        ):
            phones = [DeviceClient(new_device()) for _ in range(USERS)]
            await _register(nodes, phones[0], "warm-up")  # a user needs a device to be asked
            await until_everyone_listens(rp, nodes.urls, "warm-up")
            mechanisms = [
                await _register(nodes, phone, f"user-{i}") for i, phone in enumerate(phones)
            ]
            outcomes: dict[str, tuple[str, str]] = {}  # session id: (wanted, what the waiter saw)
            try:
                for round_ in range(ROUNDS):
                    async with anyio.create_task_group() as tasks:
                        for user in range(USERS):
                            turn = round_ * USERS + user
                            tasks.start_soon(
                                _cycle, nodes, rp, phones[user], mechanisms[user], turn, outcomes
                            )
            finally:
                for phone in phones:
                    await phone.aclose()
            assert len(outcomes) == USERS * ROUNDS
            assert [o for o in outcomes.values() if o[0] != o[1]] == []

            await _wait_for_webhooks(receiver, len(outcomes) + 3)  # + the warm-up's cancels
            per_session = _delivered_once(receiver)
            for session_id, (wanted, _) in outcomes.items():
                finished = [t for t in per_session[session_id] if t in TERMINAL]
                assert finished == [f"session.{wanted}"]
            assert await _outbox_states(url) == {"done"}


async def _register(nodes: Cluster, phone: DeviceClient, username: str) -> Mechanism:
    await nodes.admin.accounts.create_user("/", username, None)
    started = await nodes.admin.devices.start_registration("/", username)
    return await phone.register(started.uri)


async def _cycle(
    nodes: Cluster,
    rp: httpx.AsyncClient,
    phone: DeviceClient,
    mechanism: Mechanism,
    turn: int,
    outcomes: dict[str, tuple[str, str]],
) -> None:
    """Create and wait on one node, poll on the next, answer on the third."""
    urls = nodes.urls
    create, poll, answer = (urls[(turn + k) % len(urls)] for k in range(3))
    approve = turn % 2 == 0
    created = await rp.post(f"{create}{SESSIONS}", json={"user": mechanism.account})
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    waited: list[httpx.Response] = []

    async def wait() -> None:
        waited.append(await rp.get(f"{create}{SESSIONS}/{session_id}?wait=30"))

    with anyio.fail_after(25):  # well before the waiter's own 30 s: only a NOTIFY wakes it
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait)
            await anyio.sleep(0.2)  # the waiter is in
            moved = _moved(mechanism, urls[0], poll, answer)
            phone.device = phone.device.with_mechanism(moved)
            (notification,) = await phone.pending(moved)
            if approve:
                await phone.approve(notification)
            else:
                await phone.deny(notification)
    [answer_seen] = waited
    assert answer_seen.status_code == 200, answer_seen.text
    outcomes[session_id] = ("accepted" if approve else "rejected", answer_seen.json()["status"])


async def test_one_sweeper_at_a_time_expires_each_session_once(tmp_path: Path) -> None:
    async with fresh_database() as url, receiving() as receiver:
        await _setup(url, receiver)
        async with (
            cluster(url, tmp_path, PUSHGATE_EXPIRY_SWEEP_SECONDS="0.1") as nodes,
            httpx.AsyncClient(headers={"X-API-Key": nodes.key}, timeout=30) as rp,
        ):
            holder = await asyncpg.connect(url)
            phone = DeviceClient(new_device())  # one phone with every user's account
            try:
                # The test holds the sweepers' lock: no node may expire anything meanwhile.
                await holder.execute(
                    "SELECT pg_advisory_lock(hashtext($1), hashtext($2))", *SWEEPER_LOCK_KEYS
                )
                ids = []
                for i in range(12):
                    username = f"late-{i}"
                    await _register(nodes, phone, username)
                    node = nodes.urls[i % len(nodes.urls)]
                    created = await rp.post(
                        f"{node}{SESSIONS}", json={"user": username, "secondsToExpire": 1}
                    )
                    assert created.status_code == 201, created.text
                    ids.append(created.json()["id"])
                await anyio.sleep(2)  # every deadline passed; three sweepers ran ten times each
                # (The API shows a session past its deadline as expired already; the row is
                # what a sweeper changes.)
                rows = await holder.fetch("SELECT status FROM sessions WHERE id = ANY($1)", ids)
                assert [row["status"] for row in rows] == ["PENDING"] * len(ids)
            finally:
                await holder.execute(
                    "SELECT pg_advisory_unlock(hashtext($1), hashtext($2))", *SWEEPER_LOCK_KEYS
                )
                await holder.close()
                await phone.aclose()

            await _wait_for_webhooks(receiver, len(ids))
            per_session = _delivered_once(receiver)
            for session_id in ids:
                assert [t for t in per_session[session_id] if t in TERMINAL] == ["session.expired"]
            conn = await asyncpg.connect(url)
            try:
                expiries = await conn.fetch(
                    "SELECT subject, count(*) AS n FROM audit WHERE event = 'session.expired'"
                    " GROUP BY subject"
                )
            finally:
                await conn.close()
            assert {row["subject"]: row["n"] for row in expiries} == dict.fromkeys(ids, 1)


async def test_nodes_started_together_on_an_empty_database_migrate_it_once() -> None:
    """Every node migrates at start-up: started together (a fresh install, a rolling upgrade
    gone parallel) they wait for each other instead of failing on a duplicate table."""
    async with fresh_database(migrated=False) as url:
        env = serve_environment(url, "http://127.0.0.1:1")
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "pushgate",
                "migrate",
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(3)
        ]
        outputs = [(await p.communicate())[0].decode() for p in processes]
        assert [p.returncode for p in processes] == [0, 0, 0], outputs
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT version_num FROM alembic_version") == head_revision()
        finally:
            await conn.close()
