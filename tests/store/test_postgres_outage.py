"""The PostgreSQL adapter through outages (issue 6, "a failing database"): a database that is
down, missing or kills our connections is `Unavailable` (503), never a driver exception, and
writes nothing; the pool and the LISTEN/NOTIFY listener come back by themselves.

Outages are real: backends are killed with `pg_terminate_backend`, and a TCP forwarder between
the store and the shared server is cut and restored to take the whole database away.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
from collections.abc import AsyncIterator

import anyio
import asyncpg
import pytest
from sqlalchemy.engine import make_url

from pushgate.errors import Unavailable
from pushgate.sessions.machine import Event, transition
from pushgate.sessions.model import SessionStatus
from pushgate.settings import Settings
from pushgate.store import schema
from pushgate.store.engine import postgres_dsn
from pushgate.store.postgres import PostgresStore
from pushgate.store.sealing import Sealer
from pushgate.wiring import migrate_database
from tests.store.support import (
    NOW,
    audit_events,
    created,
    followed,
    new_session,
    new_user,
    probe_until_heard,
    seed,
    table,
    until,
)
from tests.support import (
    POSTGRES_ADMIN_URL,
    TEST_SECRET_KEY,
    create_postgres_database,
    drop_postgres_database,
    empty_database_at,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
]
SEALER = Sealer(base64.b64decode(TEST_SECRET_KEY))


class Proxy:
    """A TCP forwarder to PostgreSQL that a test cuts and restores: an outage of the database
    as the store sees it, without stopping the shared server."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Refuse new connections and drop every open one."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.transport.abort()

        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(pump, reader, up_writer)
                tasks.start_soon(pump, up_reader, writer)
        finally:
            self._open -= {writer, up_writer}


def via(url: str, port: int) -> str:
    return make_url(url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    await empty_database_at(database_url)
    conn = await asyncpg.connect(postgres_dsn(database_url))
    try:
        yield conn
    finally:
        await conn.close()


async def terminate_others(admin: asyncpg.Connection) -> int:
    """Kill every backend of the test database but the admin's own: the store's."""
    killed = await admin.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    return int(killed)


async def test_an_unreachable_or_missing_database_is_unavailable(database_url: str) -> None:
    missing = make_url(database_url).set(database="pushgate_no_such_database")
    for url in (
        via(database_url, closed_port()),
        missing.render_as_string(hide_password=False),
    ):
        store = PostgresStore(url, SEALER)
        try:
            with anyio.fail_after(10):
                with pytest.raises(Unavailable):
                    await store.ping()
                with pytest.raises(Unavailable):
                    await store.check_secret_key()
                with pytest.raises(Unavailable):
                    async with store.autocommit() as db:
                        await db.accounts.get_realm("/")
                with pytest.raises(Unavailable):
                    async with store.transaction() as tx:
                        await tx.accounts.get_realm("/")
        finally:
            await store.aclose()


async def test_killed_connections_fail_one_call_each_at_most(
    database_url: str, admin: asyncpg.Connection
) -> None:
    """A pooled connection whose backend dies may fail the one call that finds it dead,
    always as Unavailable; the pool replaces it and the calls after that work."""
    pool_size = 3
    store = PostgresStore(database_url, SEALER, pool_size=pool_size)
    try:
        await seed(store)
        for _ in range(5):
            async with anyio.create_task_group() as tasks:  # every pooled connection open
                for _ in range(pool_size):
                    tasks.start_soon(store.ping)
            assert await terminate_others(admin) == pool_size
            failures = 0
            for _ in range(pool_size + 1):
                try:
                    async with store.autocommit() as db:
                        assert await db.accounts.get_user("/", "alice") is not None
                except Unavailable:
                    failures += 1
            assert failures <= pool_size
            async with store.autocommit() as db:
                assert await db.accounts.get_user("/", "alice") is not None
            async with store.transaction() as tx:
                assert await tx.devices.get("/", "mech-1") is not None
    finally:
        await store.aclose()


async def test_a_connection_killed_mid_statement_writes_nothing(
    database_url: str, admin: asyncpg.Connection
) -> None:
    store = PostgresStore(database_url, SEALER)
    try:
        _, _, session, notification = await seed(store)
        answer = followed(session, Event.APPROVE, NOW + 1, message_id=notification.message_id)
        failed: list[BaseException] = []

        async def commit() -> None:
            try:
                async with store.autocommit() as db:
                    await db.sessions.commit(answer)
            except Exception as exc:
                failed.append(exc)

        async def waiting_on_the_lock() -> int | None:
            pid = await admin.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            return int(pid) if pid is not None else None

        locker = await asyncpg.connect(postgres_dsn(database_url))
        try:
            async with locker.transaction():
                await locker.execute("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", session.id)
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(commit)
                    with anyio.fail_after(10):
                        while (pid := await waiting_on_the_lock()) is None:
                            await anyio.sleep(0.02)
                    await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await locker.close()
        [error] = failed
        assert isinstance(error, Unavailable), repr(error)
        async with store.autocommit() as db:
            assert await db.sessions.get("/", session.id) == session
        assert await audit_events(database_url, session.id) == ["test.created"]
        assert await table(database_url, schema.outbox) == []
        [note] = await table(database_url, schema.notifications)
        assert note["answered_ms"] is None
        async with store.autocommit() as db:  # and the next try wins
            assert await db.sessions.commit(answer)
    finally:
        await store.aclose()


async def test_the_pool_comes_back_after_an_outage(database_url: str) -> None:
    await empty_database_at(database_url)
    url = make_url(database_url)
    proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    store = PostgresStore(via(database_url, proxy.port), SEALER, pool_size=2)
    try:
        user = new_user()
        async with store.autocommit() as db:
            assert await db.accounts.add_user(user)
        await proxy.stop()
        for _ in range(3):
            with pytest.raises(Unavailable):
                async with store.autocommit() as db:
                    await db.accounts.get_user("/", "alice")
            with pytest.raises(Unavailable):
                async with store.transaction() as tx:
                    await tx.sessions.add(s := new_session(user), [], created(s))
            with pytest.raises(Unavailable):
                await store.ping()
        await proxy.start()  # the same port: the database is back
        await store.ping()
        async with store.autocommit() as db:
            assert await db.accounts.get_user("/", "alice") == user
            assert (
                await db.sessions.expire_due(NOW, 10, lambda s: transition(s, Event.EXPIRE, NOW))
                == []
            )
        # Nothing the outage refused was written.
        assert await table(database_url, schema.sessions) == []
    finally:
        await store.aclose()
        await proxy.stop()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "pushgate.store" and r.levelno >= logging.WARNING
    ]


async def test_a_killed_listener_reconnects_and_still_delivers(
    database_url: str, admin: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pushgate.store")
    store = PostgresStore(database_url, SEALER)
    heard: list[str] = []
    try:
        _, _, session, _ = await seed(store)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(store.watch_finished, heard.append)
            await probe_until_heard(database_url, heard)
            for _ in range(2):
                assert await terminate_others(admin) >= 1
                await until(lambda: len(_warnings(caplog)) >= 1)
                await probe_until_heard(database_url, heard)
            async with store.autocommit() as db:
                assert await db.sessions.commit(transition(session, Event.CANCEL, NOW + 1))
            await until(lambda: session.id in heard)
            tasks.cancel_scope.cancel()
    finally:
        await store.aclose()
    lost = _warnings(caplog)
    assert [r.getMessage() for r in lost] == [
        "session listener lost its connection; reconnecting"
    ] * 2
    assert all(r.exc_info is None for r in lost)


async def test_the_listener_waits_out_an_outage(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pushgate.store")
    url = make_url(database_url)
    proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    store = PostgresStore(via(database_url, proxy.port), SEALER)
    heard: list[str] = []
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(store.watch_finished, heard.append)
            await probe_until_heard(database_url, heard)
            await proxy.stop()
            await anyio.sleep(2.0)  # a few failed reconnection attempts
            assert len(_warnings(caplog)) == 1
            await proxy.start()
            await probe_until_heard(database_url, heard, seconds=15)
            tasks.cancel_scope.cancel()
    finally:
        await store.aclose()
        await proxy.stop()
    [lost] = _warnings(caplog)
    assert lost.exc_info is None
    assert "session listener reconnected" in [r.getMessage() for r in caplog.records]


async def test_an_expiry_sweep_survives_killed_connections(
    database_url: str, admin: asyncpg.Connection
) -> None:
    """The sweeper's transaction on a dead connection is Unavailable, not InterfaceError, so
    the background task that runs it can log and go on (issue 6)."""
    store = PostgresStore(database_url, SEALER, pool_size=1)
    try:
        user, _, _, _ = await seed(store)
        due = new_session(user, expires_ms=NOW + 1)
        async with store.autocommit() as db:
            await db.sessions.add(due, [], created(due))
        await terminate_others(admin)
        expire = lambda s: transition(s, Event.EXPIRE, NOW + 5)  # noqa: E731
        try:
            async with store.autocommit() as db:
                await db.sessions.expire_due(NOW + 5, 10, expire)
        except Unavailable:
            async with store.autocommit() as db:
                await db.sessions.expire_due(NOW + 5, 10, expire)
        async with store.autocommit() as db:
            expired = await db.sessions.get("/", due.id)
        assert expired is not None
        assert expired.status is SessionStatus.EXPIRED
    finally:
        await store.aclose()


async def test_a_server_that_refuses_writes_is_an_outage_and_its_connection_is_dropped(
    database_url: str,  # unused: this test makes a database of its own to make read-only
) -> None:
    """A demoted primary, or an address still leading to the standby after a fail-over,
    answers reads and refuses writes (SQLSTATE 25006). A write is then `Unavailable` (503),
    writes nothing, and the refusing connection is closed: once the address leads to a
    writable server again, the next write works on a fresh connection."""
    name, url = await create_postgres_database()
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    store = PostgresStore(url, SEALER, pool_size=1)  # one connection: a reused one would fail
    try:
        await migrate_database(Settings(database_url=url))
        user = new_user()
        async with store.autocommit() as db:
            assert await db.accounts.add_user(user)
        # The "demotion": new sessions of this database are read-only, and the server drops the
        # ones it had, as a restart into standby does.
        await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
            name,
        )
        with anyio.fail_after(10):
            while True:  # the first call after the kill may meet the dead connection
                try:
                    async with store.autocommit() as db:
                        assert await db.accounts.get_user("/", user.username) == user
                    break
                except Unavailable:
                    continue
            for _ in range(3):
                with pytest.raises(Unavailable, match="storage is unavailable"):
                    async with store.transaction() as tx:
                        await tx.sessions.add(s := new_session(user), [], created(s))
            with pytest.raises(Unavailable):
                async with store.autocommit() as db:
                    await db.accounts.add_user(new_user(name="bob"))
        # The "promotion": the address leads to a server that takes writes again.
        await admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        async with store.transaction() as tx:
            await tx.sessions.add(s := new_session(user), [], created(s))
        assert [row["id"] for row in await table(url, schema.sessions)] == [s.id]
        assert len(await table(url, schema.users)) == 1
    finally:
        await store.aclose()
        await admin.close()
        await drop_postgres_database(name)
