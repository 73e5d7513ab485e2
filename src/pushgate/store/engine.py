"""Database URLs and the SQLAlchemy engine that migrations and administration share; the
hot paths of both adapters use their own drivers (`store/sqlite/`, `store/postgres/`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pushgate.errors import ConfigError


def async_url(url: str) -> str:
    """Accept plain `sqlite:///` and `postgresql://` URLs and pick the async driver."""
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        return url
    raise ConfigError(
        f"PUSHGATE_DATABASE_URL: unsupported scheme {url.split(':', 1)[0]!r}"
        " (use sqlite:///PATH or postgresql://USER@HOST/DB)"
    )


def _not_a_url(url: str, exc: Exception) -> ConfigError:
    # Several hosts (a primary and its standbys) cannot share the netloc in SQLAlchemy's URL.
    hint = (
        "; list several hosts as postgresql://USER@/DB?host=H1,H2&port=5432,5432"
        "&target_session_attrs=read-write"
        if "," in url.partition("?")[0]
        else ""
    )
    return ConfigError(f"PUSHGATE_DATABASE_URL is not a database URL: {exc}{hint}")


def is_postgres(url: str) -> bool:
    return async_url(url).startswith("postgresql")


def sqlite_path(url: str) -> str:
    """The file of a `sqlite:///` URL (`:memory:` for an in-memory database)."""
    try:
        database = make_url(async_url(url)).database
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
        raise _not_a_url(url, exc) from exc
    return database or ":memory:"


def postgres_dsn(url: str) -> str:
    """The libpq-style DSN asyncpg takes, from any accepted PostgreSQL URL."""
    try:
        parsed = make_url(async_url(url))
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
        raise _not_a_url(url, exc) from exc
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 1) -> AsyncEngine:
    """A SQLAlchemy engine for either database, for migrations and administration."""
    try:
        full = make_url(async_url(url))
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
        raise _not_a_url(url, exc) from exc
    if full.drivername.startswith("sqlite"):
        engine = create_async_engine(full, pool_size=1, max_overflow=0, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(full, pool_size=pool_size, max_overflow=0, hide_parameters=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that BEGIN IMMEDIATE below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
