"""Time from a device's answer to the event on an open stream (issue 7; docs/PERFORMANCE.md).

Real `pushgate serve` processes on loopback; the phone is the simulator, the relying party
reads `GET /v1/push/sessions/{id}/events` with httpx. For each round: create a session, open
the stream and read its first event, approve on the phone, and take the time when the device's
`200 {}` arrives and when the stream's final event arrives. `same` has the stream and the
device on one process; `cross` (PostgreSQL only) has the stream on another process, woken by
LISTEN/NOTIFY. The realm's limits are lifted as in `driver.py` (one user makes every session,
far more than 10 a minute).

    .venv/bin/python benchmarks/event_stream_latency.py --rounds 200 \\
        --database postgresql://postgres@127.0.0.1:5432/pushgate_bench
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from pushgate.settings import Settings
from pushgate.simulator.client import DeviceClient
from pushgate.simulator.device import new_device
from pushgate.wiring import build_services, migrate_database

KEY = "dGVzdC1zZWNyZXQta2V5LW9mLTMyLWJ5dGVzLi4uLi4="
BENCH_POLICY = {"createsPerMinute": 10_000, "onePendingPerUser": False, "lockAfterFailures": 100}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve(database: str) -> tuple[str, asyncio.subprocess.Process]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
    env |= {
        "PUSHGATE_DATABASE_URL": database,
        "PUSHGATE_PUBLIC_URL": base,
        "PUSHGATE_SECRET_KEY": KEY,
        "PUSHGATE_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pushgate",
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                if (await http.get(base + "/healthz")).status_code == 200:
                    return base, process
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the server did not start")


async def run(database: str, rounds: int, cross: bool) -> list[tuple[float, float]]:
    settings = Settings(database_url=database, secret_key=KEY)
    await migrate_database(settings)
    device_base, device_server = await serve(database)
    stream_base, stream_server = (await serve(database)) if cross else (device_base, None)
    services = build_services(settings.model_copy(update={"public_url": device_base}))
    try:
        await services.accounts.set_realm_policy("/", BENCH_POLICY)
        key = (await services.accounts.create_api_key("/")).key
        user = f"bench-{time.time_ns()}"
        await services.accounts.create_user("/", user, None)
        started = await services.devices.start_registration("/", user)
        samples = []
        async with (
            DeviceClient(new_device()) as phone,
            httpx.AsyncClient(headers={"X-API-Key": key}, timeout=30) as rp,
        ):
            mechanism = await phone.register(started.uri)
            for _ in range(rounds + 5):
                reply = await rp.post(device_base + "/v1/push/sessions", json={"user": user})
                session_id = reply.json()["id"]
                (notification,) = await phone.pending(mechanism)
                url = f"{stream_base}/v1/push/sessions/{session_id}/events"
                async with rp.stream("GET", url) as stream:
                    lines = stream.aiter_lines()
                    async for line in lines:  # the first event: the stream is open
                        if line == "":
                            break
                    before = time.perf_counter()
                    await phone.approve(notification)
                    answered = time.perf_counter()
                    async for line in lines:
                        if line.startswith("data:") and '"accepted"' in line:
                            seen = time.perf_counter()
                            break
                samples.append((answered - before, seen - answered))
        return samples[5:]  # the first rounds warm the connections up
    finally:
        await services.store.aclose()
        for process in (device_server, stream_server):
            if process is not None:
                process.terminate()
                await process.wait()


def report(name: str, samples: list[tuple[float, float]]) -> None:
    after = sorted(s[1] * 1000 for s in samples)
    total = sorted((s[0] + s[1]) * 1000 for s in samples)
    p = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
    print(
        f"{name}: n={len(samples)}  device 200 -> event: median {statistics.median(after):.2f} ms,"
        f" p95 {p(after, 0.95):.2f} ms;  device request sent -> event: median"
        f" {statistics.median(total):.2f} ms, p95 {p(total, 0.95):.2f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--database", default="", help="a PostgreSQL URL (else only SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite:///{Path(tmp) / 'bench.db'}"
        report("sqlite, same process", await run(sqlite, args.rounds, cross=False))
    if args.database:
        report("postgres, same process", await run(args.database, args.rounds, cross=False))
        report("postgres, across processes", await run(args.database, args.rounds, cross=True))


if __name__ == "__main__":
    asyncio.run(main())
