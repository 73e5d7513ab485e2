"""Fixtures shared by the store, service and API tests: one database per backend per run,
emptied before each test, parametrized over SQLite and PostgreSQL (STYLE.md §13).

In CI (`CI=true`) an unreachable PostgreSQL fails the run; elsewhere its tests skip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pushgate.api.app import create_app
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.wiring import build_services, migrate_database
from tests.support import (
    BACKENDS,
    TEST_SECRET_KEY,
    FakeClock,
    create_postgres_database,
    drop_postgres_database,
    empty_database,
)


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
    name, url = await create_postgres_database()
    try:
        await migrate_database(Settings(database_url=url))
        yield url
    finally:
        await drop_postgres_database(name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        public_url="http://testserver",
        secret_key=TEST_SECRET_KEY,
        # Never the user's ~/.config: a key made on first use lands in the test's folder.
        vapid_private_key_file=str(tmp_path / "vapid.pem"),
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
