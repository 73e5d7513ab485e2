"""The PostgreSQL adapter of the unit of work (`store/ports.py`; DESIGN.md layer 4), on asyncpg.

SQLAlchemy's async layer cost ~150 µs of CPU per statement and ~300 µs per transaction, more
than the queries themselves (issue #3), so this adapter speaks asyncpg directly: statements
prepared once per connection, one round trip each. The schema and its migrations stay in
SQLAlchemy/Alembic (`schema.py`, `migrations/`); column lists are read from that metadata.
One module per area (`accounts`, `devices`, `sessions`, `outbox`, `audit`) holds each
statement beside the method that runs it.

A lost or refused connection is `Unavailable` (503), never a driver exception: at connect,
inside any statement, at BEGIN/COMMIT. The pool opens connections on demand and replaces a
dead one on the next acquire, so service comes back by itself after an outage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

import anyio
import asyncpg

from pushgate.store.engine import postgres_dsn
from pushgate.store.ports import Store, UnitOfWork
from pushgate.store.postgres import sql
from pushgate.store.postgres.accounts import PostgresAccounts
from pushgate.store.postgres.audit import PostgresAuditLog
from pushgate.store.postgres.devices import PostgresDevices
from pushgate.store.postgres.inbox import PostgresInbox
from pushgate.store.postgres.journeys import PostgresJourneys
from pushgate.store.postgres.listen import FINISHED_CHANNEL, listen_forever
from pushgate.store.postgres.logins import PostgresLogins
from pushgate.store.postgres.outbox import PostgresOutbox
from pushgate.store.postgres.retention import PostgresRetention
from pushgate.store.postgres.sealed import PostgresSealed
from pushgate.store.postgres.sessions import PostgresSessions
from pushgate.store.postgres.sql import CONNECTION_ERRORS, Db, unavailable
from pushgate.store.postgres.webhooks import PostgresWebhooks
from pushgate.store.sealing import Sealer

__all__ = ["PostgresStore"]

CONNECT_TIMEOUT_SECONDS = 5.0
RELEASE_TIMEOUT_SECONDS = 5.0
CLOSE_TIMEOUT_SECONDS = 10.0
# Whatever goes wrong while opening a connection means the database cannot be used: down,
# refusing, a wrong password, a missing database.
_CONNECT_ERRORS = (*CONNECTION_ERRORS, asyncpg.PostgresError)

# The newest sealed secrets, to find out at start-up whether the key is the right one.
NEWEST_DEVICE = "SELECT * FROM devices ORDER BY created_ms DESC, id DESC LIMIT 1"
NEWEST_REGISTRATION = (
    "SELECT * FROM registrations ORDER BY created_ms DESC, message_id DESC LIMIT 1"
)


async def _reset(conn: asyncpg.Connection) -> None:
    """Reset a connection going back to the pool only if a transaction was left open.

    asyncpg's default reset (RESET ALL, UNLISTEN *, ...) is a round trip on every release; our
    connections never change session state, so the only thing to undo is an interrupted
    transaction.
    """
    if conn.is_in_transaction():
        await conn.reset()


class PostgresUnitOfWork(UnitOfWork):
    """One pooled connection seen through the ports; the areas are made on demand (most units
    of work touch one or two)."""

    def __init__(self, db: Db, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    @property
    def accounts(self) -> PostgresAccounts:
        return PostgresAccounts(self._db)

    @property
    def devices(self) -> PostgresDevices:
        return PostgresDevices(self._db, self._sealer)

    @property
    def sessions(self) -> PostgresSessions:
        return PostgresSessions(self._db, self._sealer)

    @property
    def outbox(self) -> PostgresOutbox:
        return PostgresOutbox(self._db)

    @property
    def audit(self) -> PostgresAuditLog:
        return PostgresAuditLog(self._db)

    @property
    def webhooks(self) -> PostgresWebhooks:
        return PostgresWebhooks(self._db, self._sealer)

    @property
    def inbox(self) -> PostgresInbox:
        return PostgresInbox(self._db)

    @property
    def journeys(self) -> PostgresJourneys:
        return PostgresJourneys(self._db)

    @property
    def retention(self) -> PostgresRetention:
        return PostgresRetention(self._db)

    @property
    def sealed(self) -> PostgresSealed:
        return PostgresSealed(self._db, self._sealer)

    @property
    def logins(self) -> PostgresLogins:
        return PostgresLogins(self._db)


class PostgresStore(Store):
    def __init__(self, url: str, sealer: Sealer, *, pool_size: int = 10) -> None:
        self._dsn = postgres_dsn(url)
        self._sealer = sealer
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = anyio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    try:
                        # No connection floor (min_size 0): a pool that keeps one reconnects
                        # in the background during an outage and logs a traceback per try.
                        self._pool = await asyncpg.create_pool(
                            self._dsn,
                            min_size=0,
                            max_size=self._pool_size,
                            reset=_reset,
                            timeout=CONNECT_TIMEOUT_SECONDS,
                        )
                    except _CONNECT_ERRORS as exc:
                        raise unavailable(exc) from exc
        return self._pool

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        pool = await self._get_pool()
        try:
            conn = await pool.acquire()
        except _CONNECT_ERRORS as exc:
            raise unavailable(exc) from exc
        try:
            yield conn
        except BaseException:
            # The block's own exception is the one that matters; a connection that cannot
            # even be released is terminated by the pool and replaced on a later acquire.
            await self._release(pool, conn, quiet=True)
            raise
        await self._release(pool, conn, quiet=False)

    @staticmethod
    async def _release(pool: asyncpg.Pool, conn: asyncpg.Connection, *, quiet: bool) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await pool.release(conn, timeout=RELEASE_TIMEOUT_SECONDS)
            except CONNECTION_ERRORS as exc:
                if not quiet:
                    raise unavailable(exc) from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresUnitOfWork]:
        async with self._connection() as conn:
            tx = conn.transaction()
            try:
                await tx.start()
            except CONNECTION_ERRORS as exc:
                raise unavailable(exc) from exc
            try:
                yield PostgresUnitOfWork(Db(conn), self._sealer)
            except BaseException:
                # A dead connection has rolled back on the server's side already.
                with anyio.CancelScope(shield=True), suppress(*CONNECTION_ERRORS):
                    await tx.rollback()
                raise
            try:
                await tx.commit()
            except CONNECTION_ERRORS as exc:
                raise unavailable(exc) from exc

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[PostgresUnitOfWork]:
        async with self._connection() as conn:
            yield PostgresUnitOfWork(Db(conn), self._sealer)

    async def ping(self) -> None:
        async with self._connection() as conn:
            await Db(conn).execute("SELECT 1")

    async def check_secret_key(self) -> None:
        async with self._connection() as conn:
            db = Db(conn)
            # Sorting every device is a scan, once at start-up; no index is worth it.
            row = await db.fetchrow(NEWEST_DEVICE)
            if row is not None:
                sql.device(row, self._sealer)
            elif (row := await db.fetchrow(NEWEST_REGISTRATION)) is not None:
                sql.registration(row, self._sealer)
            # A database may hold webhook secrets and no device yet (there are few: open all).
            await PostgresWebhooks(db, self._sealer).list(None)

    async def schema_revision(self) -> str | None:
        async with self._connection() as conn:
            try:
                row = await Db(conn).fetchrow("SELECT version_num FROM alembic_version")
            except asyncpg.UndefinedTableError:
                return None
        return None if row is None else str(row[0])

    async def watch_finished(self, publish: Callable[[str], None]) -> None:
        """Publish the ids of sessions other processes finish (LISTEN/NOTIFY), until cancelled;
        never raises otherwise."""
        await listen_forever(
            self._dsn, FINISHED_CHANNEL, publish, connect_timeout=CONNECT_TIMEOUT_SECONDS
        )

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        with anyio.move_on_after(CLOSE_TIMEOUT_SECONDS):
            try:
                await pool.close()  # waits for borrowed connections to come back
                return
            except CONNECTION_ERRORS:
                pass
        pool.terminate()
