"""Run the Alembic migrations on start-up and from `pushgate migrate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


# Nodes started together on one PostgreSQL database would each run the same migrations and
# all but one fail on a duplicate catalog entry: the first takes this lock, the others wait
# for its COMMIT and then find the schema current (issue 10, several nodes).
MIGRATION_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('pushgate'), hashtext('migrations'))")


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(MIGRATION_LOCK)
        await conn.run_sync(lambda sync_conn: command.upgrade(_config(sync_conn), revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Step back to `revision` (an id, or relative like "-1"); for operators and tests."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.downgrade(_config(sync_conn), revision))


def head_revision() -> str:
    """The newest migration of this code (what `upgrade` brings a database to)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config(None)).get_current_head()
    assert head is not None  # the migrations form one line
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )
