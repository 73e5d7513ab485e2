"""Fixtures of the CLI tests: an empty database of its own per test (SQLite file or a new
PostgreSQL database), and helpers to read what a command left in it.

The commands run through click's runner in this process; they call `asyncio.run`, so the
tests that invoke them are plain functions, not coroutines.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import func, select

from pushgate.store import schema
from pushgate.store.engine import create_engine
from tests.support import BACKENDS, create_postgres_database, drop_postgres_database


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something listens on already."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.fixture(params=BACKENDS)
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database nobody has used yet (not even migrated)."""
    if request.param == "sqlite":
        data = tmp_path / "data"
        data.mkdir()
        yield f"sqlite:///{data / 'pushgate.db'}"
        return
    name, url = asyncio.run(create_postgres_database("pushgate_cli_"))
    try:
        yield url
    finally:
        asyncio.run(drop_postgres_database(name))


def count_rows(database_url: str, table: str) -> int:
    async def count() -> int:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                found = await conn.scalar(
                    select(func.count()).select_from(schema.metadata.tables[table])
                )
                return int(found or 0)
        finally:
            await engine.dispose()

    return asyncio.run(count())


def assert_one_error_line(result: Result, *fragments: str) -> str:
    """The command failed with exactly one `Error:` line on stderr and no traceback."""
    assert result.exit_code not in (0, None), result.output
    assert "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Commands configure logging (logs.py); later tests get the configuration they had."""
    root = logging.getLogger()
    names = ("alembic", "sqlalchemy", "aiosqlite", "asyncpg", "uvicorn", "uvicorn.error")
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in names]
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for logger, saved_level in saved:
        logger.setLevel(saved_level)
