"""`/healthz` and `/readyz` (issue 10): the process is up whatever the database does; ready
only with the database reachable, its schema current and the background runtime running."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx

from pushgate.api.app import create_app
from pushgate.background import Background
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.store import migrate
from pushgate.store.engine import create_engine
from pushgate.wiring import build_services, migrate_database
from tests.support import TEST_SECRET_KEY

HEAD = migrate.head_revision()


def _settings(url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=url,
        secret_key=TEST_SECRET_KEY,
        vapid_private_key_file=str(tmp_path / "vapid.pem"),
    )


@asynccontextmanager
async def _app(
    services: Services, *, background: Background | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(services, close_store=False, background=background, schema_head=HEAD)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_ready_with_the_runtime_running(services: Services) -> None:
    background = Background(services)
    async with _app(services, background=background) as http:
        starting = await http.get("/readyz")  # before the runtime runs
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(background.run)
            with anyio.fail_after(10):
                while not background.healthy:
                    await anyio.sleep(0.01)
            ready = await http.get("/readyz")
            alive = await http.get("/healthz")
            tasks.cancel_scope.cancel()
    assert starting.status_code == 503
    assert starting.json()["status"] == "unready"
    assert "background" in starting.json()["reason"]
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    tasks = ready.json()["tasks"]
    assert {"expiry", "listener", "outbox"} <= set(tasks)
    assert {task["state"] for task in tasks.values()} == {"running"}
    assert alive.status_code == 200


async def _during_outage(services: Services) -> tuple[httpx.Response, httpx.Response]:
    try:
        async with _app(services) as http:
            return await http.get("/healthz"), await http.get("/readyz")
    finally:
        await services.store.aclose()


async def test_postgres_at_a_closed_port_is_unready_but_alive(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:1/pushgate"  # nothing listens on port 1
    alive, ready = await _during_outage(build_services(_settings(url, tmp_path)))
    assert alive.status_code == 200
    assert alive.json()["status"] == "ok"
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unready",
        "reason": "the database is unreachable",
        "tasks": {},
    }


async def test_a_missing_sqlite_file_is_unready_but_alive(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gone' / 'pushgate.db'}"  # its directory is gone too
    alive, ready = await _during_outage(build_services(_settings(url, tmp_path)))
    assert alive.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["reason"] == "the database is unreachable"


async def test_a_database_behind_on_migrations_is_unready(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pushgate.db'}"
    settings = _settings(url, tmp_path)
    await migrate_database(settings)
    engine = create_engine(url)
    try:
        await migrate.downgrade(engine, "-1")
        behind = await migrate.current_revision(engine)
    finally:
        await engine.dispose()
    _, ready = await _during_outage(build_services(settings))
    assert ready.status_code == 503
    assert ready.json()["reason"] == (
        f"the database schema is at {behind}, this server needs {HEAD}: run `pushgate migrate`"
    )

    await migrate_database(settings)  # `pushgate migrate` puts it right
    _, ready = await _during_outage(build_services(settings))
    assert ready.status_code == 200, ready.text


async def test_a_database_never_migrated_is_unready(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()  # it opens; nothing is in it
    _, ready = await _during_outage(build_services(_settings(f"sqlite:///{path}", tmp_path)))
    assert ready.status_code == 503
    assert ready.json()["reason"] == "the database has no schema: run `pushgate migrate`"


async def test_a_task_that_keeps_failing_makes_it_unready(tmp_path: Path) -> None:
    """A database that answers, at the current schema, whose sessions table is gone: the
    expiry sweeper fails on every round."""
    path = tmp_path / "pushgate.db"
    settings = _settings(f"sqlite:///{path}", tmp_path).model_copy(
        update={"expiry_sweep_seconds": 0.02}
    )
    await migrate_database(settings)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE notifications")
        conn.execute("DROP TABLE sessions")
    services = build_services(settings)
    background = Background(services)
    try:
        async with (
            _app(services, background=background) as http,
            anyio.create_task_group() as tasks,
        ):
            tasks.start_soon(background.run)
            with anyio.fail_after(10):
                while background.health()["expiry"].state != "retrying":
                    await anyio.sleep(0.01)
            ready = await http.get("/readyz")
            alive = await http.get("/healthz")
            tasks.cancel_scope.cancel()
    finally:
        await services.store.aclose()
    assert alive.status_code == 200
    assert ready.status_code == 503
    reason = ready.json()["reason"]
    assert reason.startswith("background task expiry is retrying: "), reason
    assert "no such table" in reason
    assert ready.json()["tasks"]["expiry"]["state"] == "retrying"
