"""`SqliteStore`: the store port (`store/ports.py`) on one SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType

import anyio

from pushgate.store.engine import sqlite_path
from pushgate.store.sealing import Sealer
from pushgate.store.sqlite.accounts import SqliteAccounts
from pushgate.store.sqlite.audit import SqliteAuditLog
from pushgate.store.sqlite.connection import (
    AutocommitDb,
    Connection,
    Db,
    KeyCheckedSealer,
    TransactionDb,
    raise_if_unavailable,
    rollback,
)
from pushgate.store.sqlite.devices import SqliteDevices
from pushgate.store.sqlite.inbox import SqliteInbox
from pushgate.store.sqlite.journeys import SqliteJourneys
from pushgate.store.sqlite.logins import SqliteLogins
from pushgate.store.sqlite.outbox import SqliteOutbox
from pushgate.store.sqlite.retention import SqliteRetention
from pushgate.store.sqlite.sealed import SqliteSealed
from pushgate.store.sqlite.sessions import SqliteSessions
from pushgate.store.sqlite.webhooks import SqliteWebhooks

DEFAULT_TIMEOUT_SECONDS = 10.0


class SqliteUnitOfWork:
    def __init__(self, db: Db, sealer: Sealer) -> None:
        self.accounts = SqliteAccounts(db)
        self.devices = SqliteDevices(db, sealer)
        self.sessions = SqliteSessions(db, sealer)
        self.outbox = SqliteOutbox(db)
        self.audit = SqliteAuditLog(db)
        self.webhooks = SqliteWebhooks(db, sealer)
        self.inbox = SqliteInbox(db)
        self.journeys = SqliteJourneys(db)
        self.retention = SqliteRetention(db)
        self.sealed = SqliteSealed(db, sealer)
        self.logins = SqliteLogins(db)


class _Autocommit(AbstractAsyncContextManager[SqliteUnitOfWork]):
    """`autocommit()`: the one autocommit unit of work, shared (it holds no state), with
    nothing to do on entry or exit: each call opens, commits and translates on its own."""

    __slots__ = ("_uow",)

    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self._uow = uow

    async def __aenter__(self) -> SqliteUnitOfWork:
        return self._uow

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class SqliteStore:
    def __init__(
        self, url: str, sealer: Sealer, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    ) -> None:
        # Nothing is opened here: the first call opens the file (and says why it cannot).
        self._connection = Connection(sqlite_path(url), timeout_seconds)
        self._sealer = KeyCheckedSealer(sealer)
        self._shared_db = AutocommitDb(self._connection)
        self._shared = SqliteUnitOfWork(self._shared_db, self._sealer)
        self._autocommit = _Autocommit(self._shared)

    def autocommit(self) -> AbstractAsyncContextManager[SqliteUnitOfWork]:
        return self._autocommit

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteUnitOfWork]:
        connection = self._connection
        await connection.acquire()
        try:
            conn = await connection.begin()
            db = TransactionDb(conn)
            try:
                yield SqliteUnitOfWork(db, self._sealer)
            except BaseException:
                rollback(conn)
                raise
            finally:
                db.end()
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                rollback(conn)
                raise_if_unavailable(exc)
                raise
        finally:
            connection.lock.release()

    async def ping(self) -> None:
        # Reads the file's schema page: `SELECT 1` alone would not touch the database.
        await self._shared_db.fetch("SELECT count(*) FROM sqlite_master")

    async def check_secret_key(self) -> None:
        await self._shared.devices.open_newest_secret()
        # A database may hold webhook secrets and no device yet (there are few: open all).
        await self._shared.webhooks.list(None)

    async def schema_revision(self) -> str | None:
        found = await self._shared_db.fetch(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        )
        if not found:
            return None
        rows = await self._shared_db.fetch("SELECT version_num FROM alembic_version")
        return str(rows[0][0]) if rows else None

    async def watch_finished(self, publish: Callable[[str], None]) -> None:
        # SQLite has no channel between processes: waiters re-read their session instead.
        await anyio.sleep_forever()

    async def aclose(self) -> None:
        # After any transaction() in flight: closing under it would fail its next statement.
        await self._connection.acquire()
        try:
            self._connection.close()
        finally:
            self._connection.lock.release()
