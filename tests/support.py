"""Test helpers that are not fixtures: a clock the tests move, and a few constants."""

from __future__ import annotations

import os
import secrets

import asyncpg
import pytest
from sqlalchemy import delete, insert

from pushgate.services import Services
from pushgate.store import schema
from pushgate.store.engine import create_engine


class FakeClock:
    """A clock that only moves when a test says so (STYLE.md §4)."""

    def __init__(self, start_ms: int = 1_790_000_000_000) -> None:
        self.ms = start_ms

    def now_ms(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The key that seals device secrets in every test database (never a real one).
TEST_SECRET_KEY = "dGVzdC1zZWNyZXQta2V5LW9mLTMyLWJ5dGVzLi4uLi4="
POSTGRES_ADMIN_URL = os.environ.get(
    "PUSHGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


async def create_postgres_database(prefix: str = "pushgate_test_") -> tuple[str, str]:
    """A new, empty PostgreSQL database: its name and URL. Unreachable fails in CI, else
    skips."""
    name = prefix + secrets.token_hex(4)
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
    return name, f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


async def drop_postgres_database(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def empty_database(services: Services) -> None:
    await empty_database_at(services.settings.database_url)


async def empty_database_at(url: str) -> None:
    """Delete every row, then put back the root realm the first migration creates."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for table in reversed(schema.metadata.sorted_tables):
                await conn.execute(delete(table))
            await conn.execute(insert(schema.realms).values(name="/", created_ms=0))
    finally:
        await engine.dispose()
