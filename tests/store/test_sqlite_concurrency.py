"""The SQLite adapter under concurrent writers: several OS processes (spawned, each with its
own connection, as uvicorn workers and CLI commands are) and several tasks in each, on one
database file at once. Exactly one transition per session commits and the losers write
nothing; outbox claims never share a row; sweepers expire each due session once; nothing but
the documented `Unavailable` may escape (and with the default timeout, nothing does).
"""

from __future__ import annotations

import asyncio
import base64
import multiprocessing
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from sqlalchemy import select

from pushgate.accounts.model import User
from pushgate.audit.model import AuditEntry
from pushgate.changes import Change
from pushgate.errors import Unavailable
from pushgate.outbox.model import OutboxMessage, OutboxState
from pushgate.protocol.push_payload import PushType
from pushgate.sessions.machine import Event, Follower, SessionChange, transition
from pushgate.sessions.model import Content, Notification, PushSession, SessionStatus
from pushgate.store import migrate, schema
from pushgate.store.engine import create_engine
from pushgate.store.sealing import Sealer
from pushgate.store.sqlite import SqliteStore
from tests.store.support import new_device
from tests.support import TEST_SECRET_KEY

NOW = 1_790_000_000_000
PROCESSES = 4
TASKS = 3  # per process; the last one commits inside transaction() blocks
SESSIONS = 120
OUTBOX_ROWS = 400
KIND = "race.kind"
START_TIMEOUT = 60.0


def _store(url: str) -> SqliteStore:
    return SqliteStore(url, Sealer(base64.b64decode(TEST_SECRET_KEY)))


async def _migrated(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    return url


async def _rows(url: str, table: Any) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(select(table))]
    finally:
        await engine.dispose()


def _run_processes(target: Any, args: Sequence[Any]) -> list[dict[str, Any]]:
    """`target(*args, index, barrier, results)` in PROCESSES spawned processes started
    together; their results, in process order."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    processes = [
        ctx.Process(target=target, args=(*args, index, barrier, results))
        for index in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        found = [results.get(timeout=START_TIMEOUT) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=START_TIMEOUT)
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    return sorted(found, key=lambda r: int(r["index"]))


def _errors(results: Sequence[dict[str, Any]]) -> Counter[str]:
    return Counter(name for r in results for name in r["errors"])


def _assert_only_documented(errors: Counter[str]) -> None:
    assert set(errors) <= {"Unavailable"}, errors
    assert not errors, f"the default busy timeout should absorb every wait: {errors}"


# a device and sessions, seeded by the test process ----------------------------------------


def _user() -> User:
    user_id = str(uuid.uuid4())
    return User(user_id, "/", f"racer-{user_id}", None, NOW)


def _session(user: User, expires_ms: int) -> PushSession:
    return PushSession(
        id=str(uuid.uuid4()),
        realm="/",
        username=user.username,
        user_id=user.id,
        status=SessionStatus.PENDING,
        content=Content("Sign in"),
        push_type=PushType.DEFAULT,
        notification_count=1,
        detail=None,
        created_ms=NOW,
        expires_ms=expires_ms,
        updated_ms=NOW,
    )


async def _seed_sessions(url: str, count: int, expires_ms: int) -> list[tuple[PushSession, str]]:
    """Sessions of one new user's device, each with its notification's message id."""
    store = _store(url)
    try:
        user, sessions = _user(), []
        device = new_device(user, f"mech-{user.id}")
        async with store.transaction() as tx:
            assert await tx.accounts.add_user(user)
            assert await tx.devices.add(device)
        async with store.autocommit() as db:
            for _ in range(count):
                session = _session(user, expires_ms)
                notification = Notification(
                    f"AUTHENTICATE:{uuid.uuid4()}{NOW}",
                    session.id,
                    device.id,
                    b"c" * 32,
                    None,
                    None,
                    NOW,
                )
                created = AuditEntry("/", "test.created", session.id, NOW)
                await db.sessions.add(session, [notification], created)
                sessions.append((session, notification.message_id))
        return sessions
    finally:
        await store.aclose()


# racing transitions --------------------------------------------------------------------------


def _race_worker(
    url: str,
    message_ids: list[str],
    index: int,
    barrier: Barrier,
    results: multiprocessing.Queue[dict[str, Any]],
) -> None:
    results.put(asyncio.run(_race(url, message_ids, index, barrier)))


async def _race(url: str, message_ids: list[str], index: int, barrier: Barrier) -> dict[str, Any]:
    store = _store(url)
    wins: list[list[str]] = []
    errors: list[str] = []
    try:
        async with store.autocommit() as db:  # every racer starts from the pending session
            found = [await db.sessions.open_notification("/", m) for m in message_ids]
        opened = [f for f in found if f is not None]
        barrier.wait()  # then all processes commit at once

        async def racer(task: int) -> None:
            order = list(opened)
            random.Random(index * 100 + task).shuffle(order)
            for item in order:
                me = f"{index}:{task}"
                session, message_id = item.session, item.notification.message_id
                answering = (task + index) % 2 == 0
                move = transition(
                    session,
                    Event.APPROVE if answering else Event.CANCEL,
                    NOW + 1,
                    message_id=message_id if answering else None,
                    # The row a follower would write: keyed per racer, so a loser's would show.
                    followers=[_follower(me)],
                    audit_data={"racer": me},
                )
                try:
                    if task == TASKS - 1:
                        async with store.transaction() as tx:
                            won = await tx.sessions.commit(move)
                            await anyio.lowlevel.checkpoint()  # hold it open across a yield
                    else:
                        async with store.autocommit() as db:
                            won = await db.sessions.commit(move)
                except Unavailable:
                    errors.append("Unavailable")
                    continue
                except Exception as exc:  # anything else is a failure of the test
                    errors.append(type(exc).__name__)
                    continue
                if won:
                    wins.append([session.id, me, move.status.value])
                # SQLite's busy handler backs off for up to 100 ms, so a writer that never
                # pauses can take every session before the others wake; a breath lets them in.
                await anyio.sleep(0.001)

        async with anyio.create_task_group() as tasks:
            for task in range(TASKS):
                tasks.start_soon(racer, task)
    finally:
        await store.aclose()
    return {"index": index, "wins": wins, "errors": errors}


def _follower(racer: str) -> Follower:
    def follow(change: Change) -> list[OutboxMessage]:
        assert isinstance(change, SessionChange)
        return [OutboxMessage(KIND, change.session.realm, f"{change.session.id}:{racer}")]

    return follow


async def test_racing_commits_have_exactly_one_winner_per_session(tmp_path: Path) -> None:
    url = await _migrated(tmp_path)
    seeded = await _seed_sessions(url, SESSIONS, NOW + 60_000)
    sessions = [s for s, _ in seeded]

    results = _run_processes(_race_worker, (url, [m for _, m in seeded]))

    _assert_only_documented(_errors(results))
    wins = [w for r in results for w in r["wins"]]
    by_session = Counter(session_id for session_id, _, _ in wins)
    assert set(by_session) == {s.id for s in sessions}
    assert set(by_session.values()) == {1}
    winner = {session_id: (racer, status) for session_id, racer, status in wins}
    assert len({racer for racer, _ in winner.values()}) > 1  # they really raced

    stored = {r["id"]: r for r in await _rows(url, schema.sessions)}
    audit = await _rows(url, schema.audit)
    outbox = await _rows(url, schema.outbox)
    notifications = {r["session_id"]: r for r in await _rows(url, schema.notifications)}
    for session_id, (racer, status) in winner.items():
        assert stored[session_id]["status"] == status
        terminal = [a for a in audit if a["subject"] == session_id and a["event"] != "test.created"]
        assert [a["data"] for a in terminal] == [
            f'{{"racer":"{racer}","status":"{_wire(status)}"}}'
        ]
        assert [
            o["idempotency_key"] for o in outbox if o["idempotency_key"].startswith(session_id)
        ] == [f"{session_id}:{racer}"]
        answered = notifications[session_id]["answered_ms"]
        assert answered == (NOW + 1 if status == SessionStatus.APPROVED.value else None)


def _wire(status: str) -> str:
    return SessionStatus(status).wire


# racing outbox claims ------------------------------------------------------------------------


def _claim_worker(
    url: str, index: int, barrier: Barrier, results: multiprocessing.Queue[dict[str, Any]]
) -> None:
    results.put(asyncio.run(_claim(url, index, barrier)))


async def _claim(url: str, index: int, barrier: Barrier) -> dict[str, Any]:
    store = _store(url)
    claimed: list[int] = []
    errors: list[str] = []
    try:
        await store.ping()
        barrier.wait()

        async def worker(task: int) -> None:
            owner = f"p{index}t{task}"
            while True:
                try:
                    async with store.autocommit() as db:
                        rows = await db.outbox.claim([KIND, "other.kind"], owner, NOW, 600_000, 7)
                        for row in rows:
                            assert row.lease_owner == owner
                            assert await db.outbox.complete(row.id, owner, NOW + 1)
                except Unavailable:
                    errors.append("Unavailable")
                    continue
                except Exception as exc:
                    errors.append(type(exc).__name__)
                    return
                if not rows:
                    return
                claimed.extend(row.id for row in rows)
                await anyio.sleep(0.001)  # as in _race: let the backed-off writers in

        async with anyio.create_task_group() as tasks:
            for task in range(TASKS):
                tasks.start_soon(worker, task)
    finally:
        await store.aclose()
    return {"index": index, "claimed": claimed, "errors": errors}


async def test_concurrent_claims_are_disjoint_and_complete(tmp_path: Path) -> None:
    url = await _migrated(tmp_path)
    store = _store(url)
    try:
        async with store.autocommit() as db:
            await db.outbox.add(
                [OutboxMessage(KIND, "/", f"k{i}") for i in range(OUTBOX_ROWS)], NOW
            )
            await db.outbox.add([OutboxMessage("not.claimed", "/", "x")], NOW)
    finally:
        await store.aclose()

    results = _run_processes(_claim_worker, (url,))

    _assert_only_documented(_errors(results))
    claimed = [row_id for r in results for row_id in r["claimed"]]
    assert len(claimed) == len(set(claimed)) == OUTBOX_ROWS
    assert sum(1 for r in results if r["claimed"]) > 1  # more than one process got rows
    rows = {r["idempotency_key"]: r for r in await _rows(url, schema.outbox)}
    assert {r["state"] for k, r in rows.items() if k != "x"} == {OutboxState.DONE.value}
    assert {r["attempts"] for k, r in rows.items() if k != "x"} == {1}
    assert rows["x"]["state"] == OutboxState.PENDING.value


# racing sweepers -----------------------------------------------------------------------------


def _sweep_worker(
    url: str, index: int, barrier: Barrier, results: multiprocessing.Queue[dict[str, Any]]
) -> None:
    results.put(asyncio.run(_sweep(url, index, barrier)))


async def _sweep(url: str, index: int, barrier: Barrier) -> dict[str, Any]:
    store = _store(url)
    expired: list[str] = []
    errors: list[str] = []

    def expire(session: PushSession) -> Any:
        return transition(session, Event.EXPIRE, NOW + 10, audit_data={"sweeper": index})

    try:
        await store.ping()
        barrier.wait()
        while True:
            try:
                async with store.autocommit() as db:
                    moves = await db.sessions.expire_due(NOW + 10, 9, expire)
            except Unavailable:
                errors.append("Unavailable")
                continue
            except Exception as exc:
                errors.append(type(exc).__name__)
                break
            if not moves:
                break
            expired.extend(m.session.id for m in moves)
    finally:
        await store.aclose()
    return {"index": index, "expired": expired, "errors": errors}


async def test_concurrent_sweepers_expire_each_session_once(tmp_path: Path) -> None:
    url = await _migrated(tmp_path)
    due = [s for s, _ in await _seed_sessions(url, SESSIONS, NOW + 5)]
    live = [s for s, _ in await _seed_sessions(url, 5, NOW + 60_000)]

    results = _run_processes(_sweep_worker, (url,))

    _assert_only_documented(_errors(results))
    expired = [session_id for r in results for session_id in r["expired"]]
    assert sorted(expired) == sorted(s.id for s in due)
    stored = {r["id"]: r["status"] for r in await _rows(url, schema.sessions)}
    assert {stored[s.id] for s in due} == {SessionStatus.EXPIRED.value}
    assert {stored[s.id] for s in live} == {SessionStatus.PENDING.value}
    audit = Counter(
        a["subject"] for a in await _rows(url, schema.audit) if a["event"] != "test.created"
    )
    assert audit == Counter(s.id for s in due)


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Any:
    yield
    assert not multiprocessing.active_children()
