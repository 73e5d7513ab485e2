"""The outbox across OS processes (issue 6 "Must hold"): a process killed while it holds a
claimed row loses nothing, and two processes on one PostgreSQL never handle the same row at
the same time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from sqlalchemy import select

from pushgate.outbox.model import OutboxMessage
from pushgate.outbox.worker import OutboxWorker
from pushgate.services import Services
from pushgate.store import schema
from tests.api.helpers import connect
from tests.outbox.support import KIND, pending_session
from tests.outbox.test_worker import Recorder
from tests.support import FakeClock

ROOT = Path(__file__).resolve().parents[2]


def _worker(url: str, mode: str, now_ms: int, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.outbox.worker_process", url, mode, str(now_ms), str(log)],
        cwd=ROOT,
        stdin=subprocess.PIPE if mode == "drain" else None,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def test_a_killed_worker_loses_nothing(
    followed: Services, clock: FakeClock, tmp_path: Path
) -> None:
    await pending_session(followed)
    doomed = _worker(followed.settings.database_url, "hang", clock.ms, tmp_path / "log")
    try:
        assert doomed.stdout is not None
        with anyio.fail_after(30):
            line = await anyio.to_thread.run_sync(doomed.stdout.readline)
        assert line.startswith("claimed"), line
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        if doomed.stdout is not None:
            doomed.stdout.close()

    handler = Recorder()
    worker = OutboxWorker(followed.store, clock, {KIND: handler})
    assert await worker.run_once() == 0  # the dead process's lease still holds
    clock.advance(31)
    assert await worker.run_once() == 1
    async with connect(followed) as conn:
        [row] = (await conn.execute(select(schema.outbox))).all()
    assert row.state == "done" and row.attempts == 2
    assert len(handler.seen) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_processes_never_share_a_row(services: Services, tmp_path: Path) -> None:
    rows = 300
    now = services.clock.now_ms()
    async with services.store.autocommit() as db:
        await db.outbox.add(
            [OutboxMessage(KIND, "/", f"row-{i}") for i in range(rows)], now - 1_000_000
        )
    log = tmp_path / "handled"
    url = services.settings.database_url
    workers = [_worker(url, "drain", 0, log) for _ in range(2)]
    try:
        for process in workers:  # a start barrier: neither drains alone while the other starts
            assert process.stdout is not None
            with anyio.fail_after(30):
                assert await anyio.to_thread.run_sync(process.stdout.readline) == "ready\n"
        for process in workers:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.close()
        for process in workers:
            assert await anyio.to_thread.run_sync(process.wait) == 0
    finally:
        for process in workers:
            process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
    handled = [line.split() for line in log.read_text().splitlines()]
    ids = [int(row_id) for row_id, _, _, _ in handled]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == rows  # each exactly once
    assert len({pid for _, pid, _, _ in handled}) == 2  # both took part
    async with connect(services) as conn:
        states = {r.state for r in await conn.execute(select(schema.outbox.c.state))}
    assert states == {"done"}
