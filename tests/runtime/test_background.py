"""The background runtime (issue 6 item 5, "First run"): every task survives database
errors, and the health check tells when one is not running."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import asyncpg
import httpx
import pytest
from sqlalchemy import select

from pushgate.api.app import create_app
from pushgate.background import Background
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.store import schema
from pushgate.wiring import build_services
from tests.api.helpers import connect
from tests.outbox.support import pending_session
from tests.support import POSTGRES_ADMIN_URL, TEST_SECRET_KEY, FakeClock


@pytest.fixture
async def fast(settings: Settings, clock: FakeClock, services: Services) -> AsyncIterator[Services]:
    """Services on the emptied database whose sweeper runs every 20 ms."""
    built = build_services(
        Settings(
            database_url=settings.database_url,
            secret_key=TEST_SECRET_KEY,
            expiry_sweep_seconds=0.02,
        ),
        clock,
    )
    try:
        yield built
    finally:
        await built.store.aclose()


async def _stored_status(services: Services, session_id: str) -> str:
    async with connect(services) as conn:
        found = await conn.execute(
            select(schema.sessions.c.status).where(schema.sessions.c.id == session_id)
        )
        return str(found.scalar_one())


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_the_sweeper_survives_killed_connections(fast: Services, clock: FakeClock) -> None:
    """Killing the server's connections while the sweeper runs used to end the whole task
    group: no sweeper until a restart, sessions `sent` past their deadline."""
    database = fast.settings.database_url.rsplit("/", 1)[1]
    background = Background(fast)
    states: set[str] = set()
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(background.run)
            with anyio.fail_after(10):
                while not background.healthy:
                    await anyio.sleep(0.01)
            for _ in range(40):
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = $1 AND pid <> pg_backend_pid()",
                    database,
                )
                states.update(h.state for h in background.health().values())
                await anyio.sleep(0.025)
            session = await pending_session(fast)
            clock.advance(61)
            with anyio.fail_after(20):
                while await _stored_status(fast, session.id) != "EXPIRED":
                    await anyio.sleep(0.05)
                while not background.healthy:
                    await anyio.sleep(0.05)
            tasks.cancel_scope.cancel()
    finally:
        await admin.close()
    assert "retrying" in states  # the kills did hit it, and it came back


async def test_health_check_names_a_task_that_is_not_running(tmp_path: Path) -> None:
    """A database that answers but has no schema: the sweeper fails on every round."""
    path = tmp_path / "unmigrated.db"
    sqlite3.connect(path).close()  # an empty database file: it opens, nothing is in it
    url = f"sqlite:///{path}"
    services = build_services(
        Settings(database_url=url, secret_key=TEST_SECRET_KEY, expiry_sweep_seconds=0.02)
    )
    background = Background(services)
    app = create_app(services, background=background)
    transport = httpx.ASGITransport(app=app)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(background.run)
            with anyio.fail_after(10):
                while background.health()["expiry"].state != "retrying":
                    await anyio.sleep(0.01)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                alive = await http.get("/healthz")
                reply = await http.get("/readyz")
            tasks.cancel_scope.cancel()
    finally:
        await services.store.aclose()
    # Issue 10: the process is up (healthz, no database read); it is not ready (readyz).
    assert alive.status_code == 200
    assert alive.json()["tasks"]["expiry"]["state"] == "retrying"
    assert reply.status_code == 503
    body = reply.json()
    assert body["status"] == "unready"
    assert body["tasks"]["expiry"]["state"] == "retrying"
    assert "no such table" in body["tasks"]["expiry"]["reason"]
