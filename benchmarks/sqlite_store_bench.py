"""Micro-benchmark of the store calls of one push cycle (issue 6, "as fast as PostgreSQL").

    .venv/bin/python benchmarks/sqlite_store_bench.py                    # SQLite, 5 x 2000 cycles
    .venv/bin/python benchmarks/sqlite_store_bench.py --synchronous FULL # fsync every commit
    .venv/bin/python benchmarks/sqlite_store_bench.py --uvloop --cycles 10000 --repeat 3
    .venv/bin/python benchmarks/sqlite_store_bench.py --postgres postgresql://postgres@127.0.0.1/test

One cycle is what the four HTTP requests of a cycle ask of the store, in autocommit as the
services run them: create (`devices.user_and_active`, `sessions.add`), device poll
(`sessions.pending_for_device`), answer (`sessions.open_notification`, `sessions.commit` of the
machine's transition), result (`sessions.get`). Prints CPU time (`time.process_time`, this
process only: SQLite runs inside it, PostgreSQL's backend is not counted, as in
docs/PERFORMANCE.md's "server CPU") and wall time per cycle, the best and the median of
`--repeat` runs (the machine is shared: compare runs made side by side). Building the values
(ids, challenge, the transition) is inside the measured loop; it costs a few µs.

The SQLite database is a fresh file in a temporary directory; `--postgres ADMIN_URL` runs the
same cycle on the PostgreSQL adapter, in a database it creates and drops.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from pushgate.accounts.model import User
from pushgate.audit.model import AuditEntry
from pushgate.devices.model import Device, DeviceStatus
from pushgate.protocol.push_payload import PushType
from pushgate.sessions.machine import CREATED_EVENT, Event, transition
from pushgate.sessions.model import Content, Notification, PushSession, SessionStatus
from pushgate.store import migrate
from pushgate.store.engine import create_engine, is_postgres, postgres_dsn
from pushgate.store.ports import Store
from pushgate.store.sealing import Sealer
from pushgate.store.sqlite import SqliteStore

REALM = "/"


def _open(url: str, sealer: Sealer, synchronous: str | None) -> Store:
    if is_postgres(url):
        from pushgate.store.postgres import PostgresStore

        return PostgresStore(url, sealer)
    store = SqliteStore(url, sealer)
    if synchronous:
        # A benchmark knob, not an API: the adapter itself always sets NORMAL.
        store._connection.get().execute(f"PRAGMA synchronous = {synchronous}")
    return store


async def _provision(store: Store, now: int) -> tuple[User, Device]:
    suffix = secrets.token_hex(4)
    user = User(str(uuid.uuid4()), REALM, f"bench-{suffix}", None, now)
    device = Device(
        id=str(uuid.uuid4()),
        realm=REALM,
        user_id=user.id,
        mechanism_uid=f"mech-{suffix}",
        secret=secrets.token_bytes(32),
        push_token="token",
        device_type="android",
        communication_type="gcm",
        name="bench",
        status=DeviceStatus.ACTIVE,
        created_ms=now,
        updated_ms=now,
    )
    async with store.transaction() as tx:
        await tx.accounts.add_user(user)
        await tx.devices.add(device)
    return user, device


async def _cycle(store: Store, user: User, device: Device, now: int) -> None:
    async with store.autocommit() as db:  # create
        found_user, devices = await db.devices.user_and_active(REALM, user.username)
        assert found_user is not None and len(devices) == 1
        session = PushSession(
            id=str(uuid.uuid4()),
            realm=REALM,
            username=user.username,
            user_id=found_user.id,
            status=SessionStatus.PENDING,
            content=Content("Sign in", body="From Firefox"),
            push_type=PushType.DEFAULT,
            notification_count=1,
            detail=None,
            created_ms=now,
            expires_ms=now + 120_000,
            updated_ms=now,
        )
        notification = Notification(
            message_id=f"AUTHENTICATE:{uuid.uuid4()}{now}",
            session_id=session.id,
            device_id=devices[0].id,
            challenge=secrets.token_bytes(32),
            numbers=None,
            answer=None,
            created_ms=now,
        )
        created = AuditEntry(REALM, CREATED_EVENT, session.id, now, {"notifications": 1})
        await db.sessions.add(session, [notification], created)
    async with store.autocommit() as db:  # device poll
        pending = await db.sessions.pending_for_device(REALM, device.mechanism_uid, now, 10)
        assert pending is not None and len(pending.pending) == 1
    async with store.autocommit() as db:  # answer
        found = await db.sessions.open_notification(REALM, notification.message_id)
        assert found is not None
        move = transition(
            found.session,
            Event.APPROVE,
            now + 1,
            message_id=notification.message_id,
            audit_data={"device": found.device.id},
        )
        assert await db.sessions.commit(move)
    async with store.autocommit() as db:  # result
        result = await db.sessions.get(REALM, session.id)
        assert result is not None and result.status is SessionStatus.APPROVED


async def run(url: str, cycles: int, repeat: int, synchronous: str | None) -> None:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    store = _open(url, Sealer(secrets.token_bytes(32)), synchronous)
    cpu, wall = [], []
    try:
        now = time.time_ns() // 1_000_000
        user, device = await _provision(store, now)
        for _ in range(200):  # warm-up: statement caches, pools
            await _cycle(store, user, device, now)
        for _ in range(repeat):
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            for _ in range(cycles):
                await _cycle(store, user, device, now)
            cpu.append((time.process_time() - started_cpu) / cycles * 1e6)
            wall.append((time.perf_counter() - started_wall) / cycles * 1e6)
    finally:
        await store.aclose()
    kind = "postgres" if is_postgres(url) else f"sqlite synchronous={synchronous or 'NORMAL'}"
    print(
        f"{kind}: {repeat} x {cycles} cycles; µs per cycle, best / median:"
        f" CPU {min(cpu):.0f} / {statistics.median(cpu):.0f},"
        f" wall {min(wall):.0f} / {statistics.median(wall):.0f}"
    )


async def run_postgres(admin_url: str, cycles: int, repeat: int) -> None:
    name = "pushgate_store_bench_" + secrets.token_hex(4)
    admin = await asyncpg.connect(postgres_dsn(admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            await run(admin_url.rsplit("/", 1)[0] + "/" + name, cycles, repeat, None)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", metavar="ADMIN_URL", help="run on PostgreSQL instead")
    parser.add_argument("--cycles", type=int, default=2000, help="cycles per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs")
    parser.add_argument("--synchronous", choices=["OFF", "NORMAL", "FULL"])
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (as uvicorn does)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.postgres:
            coro = run_postgres(args.postgres, args.cycles, args.repeat)
        else:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            coro = run(url, args.cycles, args.repeat, args.synchronous)
        if args.uvloop:
            import uvloop

            uvloop.run(coro)
        else:
            asyncio.run(coro)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
