"""Fixtures shared by the store, service and API tests: one database per backend per run,
emptied before each test, parametrized over SQLite and PostgreSQL (STYLE.md §13).

In CI (`CI=true`) an unreachable PostgreSQL fails the run; elsewhere its tests skip.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from pushgate.api.app import create_app
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.wiring import build_services, migrate_database
from tests.support import (
    IN_CI,
    POSTGRES_ADMIN_URL,
    TEST_SECRET_KEY,
    FakeClock,
    empty_database,
)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


async def _create_postgres_database() -> tuple[str, str]:
    name = "pushgate_test_" + secrets.token_hex(4)
    try:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        message = f"PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


async def _drop_postgres_database(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "pushgate.db"
        url = f"sqlite:///{path}"
        await migrate_database(Settings(database_url=url))
        yield url
        return
    name, url = await _create_postgres_database()
    try:
        await migrate_database(Settings(database_url=url))
        yield url
    finally:
        await _drop_postgres_database(name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, public_url="http://testserver", secret_key=TEST_SECRET_KEY
    )


@pytest.fixture
async def services(settings: Settings, clock: FakeClock) -> AsyncIterator[Services]:
    built = build_services(settings, clock)
    await empty_database(built)
    try:
        yield built
    finally:
        await built.store.aclose()


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(services, close_store=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
