"""The SQLite adapter when things go wrong: a database that cannot be opened, another
connection holding the write lock (waited for without blocking the event loop, then
`Unavailable`, never "database is locked" as a 500), a transaction that raises or is
cancelled, a secret key that does not open, and what readers see of an open transaction."""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from pushgate.accounts.model import Realm, User
from pushgate.devices.model import Device, DeviceStatus
from pushgate.errors import SecretKeyMismatch, Unavailable
from pushgate.store import migrate
from pushgate.store.engine import create_engine
from pushgate.store.sealing import KEY_BYTES, Sealer
from pushgate.store.sqlite import SqliteStore
from tests.support import TEST_SECRET_KEY

NOW = 1_790_000_000_000


def _store(url: str, *, key: bytes | None = None, timeout: float = 10.0) -> SqliteStore:
    sealer = Sealer(key or base64.b64decode(TEST_SECRET_KEY))
    return SqliteStore(url, sealer, timeout_seconds=timeout)


def _user(name: str = "alice") -> User:
    return User(str(uuid.uuid4()), "/", name, None, NOW)


@pytest.fixture
async def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'pushgate.db'}"
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    return url


@pytest.fixture
async def store(url: str) -> AsyncIterator[SqliteStore]:
    opened = _store(url)
    try:
        yield opened
    finally:
        await opened.aclose()


async def _assert_unavailable(store: SqliteStore, reason: str) -> None:
    with pytest.raises(Unavailable) as caught:
        await store.ping()
    assert reason in caught.value.reason
    assert caught.value.message == "storage is unavailable"  # the path stays in the log
    with pytest.raises(Unavailable):
        async with store.autocommit() as db:
            await db.accounts.get_realm("/")
    with pytest.raises(Unavailable):
        async with store.autocommit() as db:
            await db.accounts.add_realm(Realm("/x", NOW))
    with pytest.raises(Unavailable):
        async with store.transaction() as tx:
            await tx.accounts.get_realm("/")
    with pytest.raises(Unavailable):
        await store.check_secret_key()


# databases that cannot be opened --------------------------------------------------------------


async def test_a_missing_directory_is_unavailable_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    store = _store(f"sqlite:///{missing / 'pushgate.db'}")
    try:
        await _assert_unavailable(store, f"the directory {missing} of the SQLite database")
    finally:
        await store.aclose()
    assert not (tmp_path / "no").exists()


async def test_a_missing_file_is_unavailable_and_not_created(tmp_path: Path) -> None:
    store = _store(f"sqlite:///{tmp_path / 'typo.db'}")
    try:
        await _assert_unavailable(store, "no SQLite database at")
    finally:
        await store.aclose()
    assert [p async for p in anyio.Path(tmp_path).iterdir()] == []


async def test_a_directory_or_a_file_of_another_kind_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    (tmp_path / "text.db").write_bytes(b"not a database, " * 512)
    for name, reason in (("dir.db", "cannot open"), ("text.db", "not a database")):
        store = _store(f"sqlite:///{tmp_path / name}")
        try:
            await _assert_unavailable(store, reason)
        finally:
            await store.aclose()
    assert (tmp_path / "text.db").read_bytes() == b"not a database, " * 512


async def test_an_unwritable_database_is_unavailable(url: str, tmp_path: Path) -> None:
    database = anyio.Path(tmp_path / "pushgate.db")
    if os.geteuid() == 0:  # root writes through permissions, not through the immutable flag
        try:
            await anyio.run_process(["chattr", "+i", str(database)])
        except (OSError, subprocess.CalledProcessError) as exc:
            pytest.skip(f"cannot make the file immutable: {exc}")
    else:
        await database.chmod(0o444)
    store = _store(url)
    try:
        async with store.autocommit() as db:
            assert await db.accounts.get_realm("/") is not None  # reading still works
        with pytest.raises(Unavailable) as caught:
            async with store.autocommit() as db:
                await db.accounts.add_realm(Realm("/x", NOW))
        assert "readonly" in caught.value.reason
        with pytest.raises(Unavailable):
            async with store.transaction() as tx:
                await tx.accounts.add_realm(Realm("/x", NOW))
    finally:
        await store.aclose()
        if os.geteuid() == 0:
            await anyio.run_process(["chattr", "-i", str(database)])
        else:
            await database.chmod(0o644)


# another connection holding the write lock ------------------------------------------------


def _hold_write_lock(url: str) -> sqlite3.Connection:
    """Another connection (as good as another process) in the middle of a write."""
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO realms (name, created_ms) VALUES ('/held', 0)")
    return holder


async def test_a_writer_waits_for_the_lock_without_blocking_the_loop(
    store: SqliteStore, url: str
) -> None:
    await store.ping()
    holder = _hold_write_lock(url)
    done = anyio.Event()

    async def write() -> None:
        async with store.autocommit() as db:
            assert await db.accounts.add_realm(Realm("/mine", NOW))
        done.set()

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(write)
            await anyio.sleep(0.3)
            # This task runs while the write waits: the wait does not block the event loop
            # (SQLite's own busy handler would), and in WAL a reader never waits for a writer.
            assert not done.is_set()
            async with store.autocommit() as db:
                assert await db.accounts.get_realm("/held") is None
            holder.execute("COMMIT")
            with anyio.fail_after(5):
                await done.wait()
    finally:
        holder.close()
    async with store.autocommit() as db:
        assert await db.accounts.get_realm("/held") is not None
        assert await db.accounts.get_realm("/mine") is not None


async def test_a_lock_held_past_the_timeout_is_unavailable_then_service_resumes(
    url: str,
) -> None:
    store = _store(url, timeout=0.2)
    holder = _hold_write_lock(url)
    try:
        with pytest.raises(Unavailable) as caught:
            async with store.autocommit() as db:
                await db.accounts.add_user(_user())
        assert "still locked after 0.2 s" in caught.value.reason
        with pytest.raises(Unavailable):
            async with store.transaction() as tx:
                await tx.accounts.add_user(_user("bob"))
        async with store.autocommit() as db:
            assert await db.accounts.get_user("/", "alice") is None
        holder.execute("ROLLBACK")
        async with store.autocommit() as db:
            assert await db.accounts.add_user(_user())
        async with store.transaction() as tx:
            assert await tx.accounts.add_user(_user("bob"))
    finally:
        holder.close()
        await store.aclose()


# transactions ------------------------------------------------------------------------------


async def test_a_transaction_that_raises_or_is_cancelled_leaves_nothing(
    store: SqliteStore,
) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.accounts.add_user(_user())
            raise RuntimeError("boom")
    with anyio.move_on_after(0.05) as scope:
        async with store.transaction() as tx:
            await tx.accounts.add_user(_user("bob"))
            await anyio.sleep(10)
    assert scope.cancelled_caught
    async with store.autocommit() as db:
        assert await db.accounts.get_user("/", "alice") is None
        assert await db.accounts.get_user("/", "bob") is None
    async with store.transaction() as tx:  # the connection is as good as new
        assert await tx.accounts.add_user(_user())


async def test_a_unit_of_work_is_dead_after_its_transaction(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        pass
    with pytest.raises(RuntimeError, match="ended"):
        await tx.accounts.get_realm("/")


async def test_autocommit_inside_the_same_tasks_transaction_is_refused(
    store: SqliteStore,
) -> None:
    """Not a deadlock: the task would wait for the transaction it holds itself."""
    with pytest.raises(RuntimeError, match="inside a transaction"):
        async with store.transaction() as tx:
            await tx.accounts.add_user(_user())
            async with store.autocommit() as db:
                await db.accounts.get_user("/", "alice")
    async with store.autocommit() as db:
        assert await db.accounts.get_user("/", "alice") is None


async def test_readers_never_see_an_open_transaction(store: SqliteStore) -> None:
    """Reads in autocommit wait for a transaction() of their own process to end, so they see
    neither its rows nor a half of it; a rolled-back block leaves nothing to see."""
    opened, release = anyio.Event(), anyio.Event()
    seen: list[object] = []

    async def writer() -> None:
        with pytest.raises(RuntimeError):
            async with store.transaction() as tx:
                await tx.accounts.add_user(_user())
                opened.set()
                await release.wait()
                seen.append("rolled back")
                raise RuntimeError("roll back")

    async def reader() -> None:
        await opened.wait()
        async with store.autocommit() as db:
            seen.append(await db.accounts.get_user("/", "alice"))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(writer)
        tasks.start_soon(reader)
        await opened.wait()
        await anyio.sleep(0.05)
        assert seen == []  # the reader is waiting
        release.set()
    assert seen == ["rolled back", None]


async def test_a_secret_that_does_not_open_rolls_the_transaction_back(
    store: SqliteStore, url: str
) -> None:
    user = _user()
    device = Device(
        str(uuid.uuid4()),
        "/",
        user.id,
        "mech-1",
        b"s" * 32,
        "token",
        "android",
        "gcm",
        "Pixel",
        DeviceStatus.ACTIVE,
        NOW,
        NOW,
    )
    async with store.transaction() as tx:
        await tx.accounts.add_user(user)
        await tx.devices.add(device)
    other = _store(url, key=b"\x02" * KEY_BYTES)
    try:
        with pytest.raises(SecretKeyMismatch):
            async with other.transaction() as tx:
                await tx.accounts.add_realm(Realm("/written", NOW))
                await tx.devices.get("/", "mech-1")
        with pytest.raises(SecretKeyMismatch):
            await other.check_secret_key()
        async with other.autocommit() as db:
            assert await db.accounts.get_realm("/written") is None
    finally:
        await other.aclose()
