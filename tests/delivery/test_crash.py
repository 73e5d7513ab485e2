"""security.md F2: a server killed with `kill -9` while a push is in flight sends it again
after its restart, as the same push (same messageId and apns-id), within the lease. `pushgate
serve` as a real process on PostgreSQL against the loopback APNs server, which holds the first
request unanswered so that the kill always lands mid-send."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pushgate.protocol import qr
from pushgate.settings import Settings
from pushgate.simulator import new_device, new_mechanism_uid, registration_body
from pushgate.wiring import build_services, migrate_database
from tests.cli.test_processes import Running
from tests.support import (
    TEST_SECRET_KEY,
    FakeClock,
    create_postgres_database,
    drop_postgres_database,
)
from tests.transports.apns_server import Answer, ApnsServer, apns_serving
from tests.transports.certs import LoopbackPki
from tests.transports.conftest import KEY_ID, TEAM_ID, TOPIC

LEASE_SECONDS = 5
TOKEN = "c0ffee" * 11


@pytest.fixture
async def database() -> AsyncIterator[str]:
    name, url = await create_postgres_database("pushgate_push_")
    try:
        await migrate_database(Settings(database_url=url))
        yield url
    finally:
        await drop_postgres_database(name)


@pytest.fixture
async def live_apns(
    apns_key: ec.EllipticCurvePrivateKey, pki: LoopbackPki
) -> AsyncIterator[ApnsServer]:
    # The server process mints provider tokens on the wall clock.
    clock = FakeClock(start_ms=int(time.time() * 1000))
    server = ApnsServer(apns_key.public_key(), KEY_ID, TEAM_ID, TOPIC, clock)
    server.script.append(Answer(hang=True))
    async with apns_serving(server, pki):
        yield server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait(condition: Callable[[], bool], seconds: float) -> None:
    with anyio.fail_after(seconds):
        while not condition():
            await anyio.sleep(0.05)


@pytest.mark.postgres
async def test_a_push_in_flight_at_a_kill_is_sent_again_after_restart(
    database: str, live_apns: ApnsServer, apns_key_file: Path, pki: LoopbackPki, tmp_path: Path
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(database_url=database, secret_key=TEST_SECRET_KEY, public_url=base)
    services = build_services(settings)
    try:
        await services.accounts.create_user("/", "alice", None)
        key = (await services.accounts.create_api_key("/")).key
        started = await services.devices.start_registration("/", "alice")
    finally:
        await services.store.aclose()
    env = {
        "PUSHGATE_DATABASE_URL": database,
        "PUSHGATE_SECRET_KEY": TEST_SECRET_KEY,
        "PUSHGATE_PUBLIC_URL": base,
        "PUSHGATE_LOG_FORMAT": "json",
        "PUSHGATE_OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
        "PUSHGATE_TLS_CA_FILE": str(pki.ca_file),
        "PUSHGATE_APNS_KEY_FILE": str(apns_key_file),
        "PUSHGATE_APNS_KEY_ID": KEY_ID,
        "PUSHGATE_APNS_TEAM_ID": TEAM_ID,
        "PUSHGATE_APNS_TOPIC": TOPIC,
        "PUSHGATE_APNS_URL": live_apns.url,
        "PYTHONUNBUFFERED": "1",
        "PATH": "/usr/bin:/bin",
    }
    serve = ["serve", "--port", str(port), "--no-access-log"]
    server = Running(serve, env, tmp_path)
    restarted: Running | None = None
    try:
        await anyio.to_thread.run_sync(server.wait_for, "Application startup complete")
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            uri = qr.parse(started.uri)
            device = dataclasses.replace(
                new_device(), device_id=TOKEN, device_type="ios", communication_type="apns"
            )
            body = registration_body(uri, new_mechanism_uid(), device)
            assert (await http.post(uri.register_url, json=body)).status_code == 200
            created = await http.post(
                "/v1/push/sessions",
                json={"user": "alice", "notification": {"title": "Sign in"}},
                headers={"X-API-Key": key},
            )
            assert created.status_code == 201, created.text
        await _wait(lambda: len(live_apns.received) == 1, 10)
        server.process.kill()  # SIGKILL, the push unanswered
        server.process.wait()

        restarted = Running(serve, env, tmp_path)
        await anyio.to_thread.run_sync(restarted.wait_for, "Application startup complete")
        await _wait(lambda: len(live_apns.received) >= 2, LEASE_SECONDS + 20)
    finally:
        server.close()
        if restarted is not None:
            restarted.close()

    first, again = live_apns.received[:2]
    assert first.headers[":path"] == again.headers[":path"] == f"/3/device/{TOKEN}"
    assert first.headers["apns-id"] == again.headers["apns-id"]
    assert first.payload == again.payload
    aps = again.payload["aps"]
    assert isinstance(aps, dict) and aps["messageId"].startswith("AUTHENTICATE:")
    assert again.payload["operationId"] == created.json()["id"]
