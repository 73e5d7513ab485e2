"""An outbox worker in its own OS process, for the crash and two-process tests.

    python -m tests.outbox.worker_process DATABASE_URL MODE NOW_MS LOG_PATH

MODE `hang`: claim with a 30 s lease at NOW_MS, print "claimed", then block inside the handler
(the test kills the process there). MODE `drain`: print "ready" once the database answers and
wait for a line on stdin (so that every process starts together), then handle every due `KIND`
row with the real clock, appending "row pid start end" per row to LOG_PATH, until none is left
for 2 s.
"""

from __future__ import annotations

import os
import sys
import time

import anyio

from pushgate.clock import SystemClock
from pushgate.outbox.model import OutboxRow
from pushgate.outbox.worker import OutboxWorker, Outcome, WorkerSettings
from pushgate.settings import Settings
from pushgate.wiring import build_services
from tests.outbox.support import KIND
from tests.support import TEST_SECRET_KEY


class FixedClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def now_ms(self) -> int:
        return self.ms


async def main(url: str, mode: str, now_ms: int, log_path: str) -> None:
    services = build_services(Settings(database_url=url, secret_key=TEST_SECRET_KEY))
    try:
        if mode == "hang":

            async def hang(row: OutboxRow) -> Outcome:
                print("claimed", row.id, flush=True)
                await anyio.sleep_forever()

            worker = OutboxWorker(
                services.store,
                FixedClock(now_ms),
                {KIND: hang},
                settings=WorkerSettings(lease_ms=30_000),
            )
            await worker.run_once()
            return

        async def record(row: OutboxRow) -> Outcome:
            start = time.monotonic_ns()
            await anyio.sleep(0.002)  # long enough for an overlap to show
            with open(log_path, "a", encoding="ascii") as log:  # noqa: ASYNC230 - a test log line
                log.write(f"{row.id} {os.getpid()} {start} {time.monotonic_ns()}\n")
            return None

        worker = OutboxWorker(
            services.store, SystemClock(), {KIND: record}, settings=WorkerSettings(batch=5)
        )
        await services.store.ping()
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 2:
            if await worker.run_once():
                idle_since = time.monotonic()
            else:
                await anyio.sleep(0.05)
    finally:
        await services.store.aclose()


if __name__ == "__main__":
    url, mode, now_ms, log_path = sys.argv[1:5]
    anyio.run(main, url, mode, int(now_ms), log_path)
