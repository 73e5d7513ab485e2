"""The store adapter itself, on SQLite and PostgreSQL alike (`store/ports.py`): ping, the
secret-key check, migrating again, and hearing of finished sessions from other processes.
"""

from __future__ import annotations

import anyio
import pytest

from pushgate.devices.model import PendingRegistration
from pushgate.errors import SecretKeyMismatch
from pushgate.sessions.machine import Event, transition
from pushgate.store import migrate, schema
from pushgate.store.engine import create_engine
from pushgate.store.ports import Store
from pushgate.store.sealing import KEY_BYTES
from tests.store.support import (
    NOW,
    created,
    new_device,
    new_session,
    new_user,
    open_store,
    probe_until_heard,
    seed,
    sweeper_expiry,
    table,
    until,
)


async def test_ping_and_a_matching_secret_key(store: Store) -> None:
    await store.ping()
    await store.check_secret_key()  # nothing sealed yet
    await seed(store)
    await store.check_secret_key()


async def test_a_foreign_secret_key_is_a_mismatch(store: Store, database_url: str) -> None:
    user = new_user()
    registration = PendingRegistration(
        "REGISTER:r", "/", user.id, "dev-r", b"r" * 32, b"k", NOW, NOW + 1
    )
    async with store.transaction() as tx:
        await tx.accounts.add_user(user)
        await tx.devices.add_registration(registration)
    other = open_store(database_url, key=b"\x01" * KEY_BYTES)
    try:
        with pytest.raises(SecretKeyMismatch):
            await other.check_secret_key()  # a registration only
        async with store.autocommit() as db:
            assert await db.devices.add(new_device(user))
        with pytest.raises(SecretKeyMismatch):
            await other.check_secret_key()
        with pytest.raises(SecretKeyMismatch):
            async with other.autocommit() as db:
                await db.devices.get("/", "mech-1")
        with pytest.raises(SecretKeyMismatch):
            async with other.autocommit() as db:
                await db.devices.get_registration("/", "REGISTER:r")
        await other.ping()
    finally:
        await other.aclose()


async def test_migrating_again_changes_nothing(store: Store, database_url: str) -> None:
    await seed(store)
    engine = create_engine(database_url)
    try:
        before = await migrate.current_revision(engine)
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == before
    finally:
        await engine.dispose()
    assert len(await table(database_url, schema.realms)) == 1
    assert len(await table(database_url, schema.sessions)) == 1


async def test_watch_finished_runs_until_cancelled(store: Store) -> None:
    published: list[str] = []
    with anyio.move_on_after(0.3) as waited:
        await store.watch_finished(published.append)
    assert waited.cancelled_caught


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.postgres
async def test_other_processes_hear_of_every_finished_session(
    store: Store, database_url: str
) -> None:
    user, _, session, notification = await seed(store)
    due = [new_session(user, expires_ms=NOW + 1) for _ in range(3)]
    heard: list[str] = []
    other = open_store(database_url)  # another process's store
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(store.watch_finished, heard.append)
            await probe_until_heard(database_url, heard)
            async with other.autocommit() as db:
                for s in due:
                    await db.sessions.add(s, [], created(s))
                answer = transition(
                    session, Event.APPROVE, NOW + 1, message_id=notification.message_id
                )
                assert await db.sessions.commit(answer)
                assert not await db.sessions.commit(answer)  # a loser announces nothing
                await db.sessions.expire_due(NOW + 5, 10, sweeper_expiry(NOW + 5))
            await until(lambda: set(heard) >= {session.id, *(s.id for s in due)})
            tasks.cancel_scope.cancel()
    finally:
        await other.aclose()
    assert sorted(heard) == sorted([session.id, *(s.id for s in due)])
