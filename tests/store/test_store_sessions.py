"""The unit of work's sessions, on SQLite and PostgreSQL alike (`store/ports.py`): a
transition commits status, audit entry, outbox rows and answered notification together,
and a losing one writes nothing at all; pending notifications and the expiry sweep.

What a call wrote is checked in the tables themselves, read through a separate engine.
"""

from __future__ import annotations

import dataclasses

import asyncpg
import pytest
from sqlalchemy import update

from pushgate.outbox.model import Lease
from pushgate.sessions.machine import Event, transition
from pushgate.sessions.model import Notification, PushSession, SessionStatus
from pushgate.store import schema
from pushgate.store.engine import postgres_dsn
from pushgate.store.ports import Store
from tests.store.support import (
    KIND,
    NOW,
    audit_events,
    change,
    created,
    followed,
    message,
    new_device,
    new_notification,
    new_session,
    new_user,
    outbox_keys,
    seed,
    sweeper_expiry,
    table,
)


async def test_add_writes_session_notifications_audit_and_outbox(
    store: Store, database_url: str
) -> None:
    user = new_user()
    phone, tablet = new_device(user, "m-1"), new_device(user, "m-2")
    session = new_session(user, count=2)
    notes = [new_notification(session, phone), new_notification(session, tablet)]
    rows = [message("a"), message("b", not_before_ms=NOW + 7)]
    async with store.transaction() as tx:
        await tx.accounts.add_user(user)
        await tx.devices.add(phone)
        await tx.devices.add(tablet)
    async with store.autocommit() as db:
        await db.sessions.add(session, notes, created(session), rows)
        assert await db.sessions.get("/", session.id) == session
        for note in notes:
            found = await db.sessions.open_notification("/", note.message_id)
            assert found is not None
            assert found.notification == note
    assert await audit_events(database_url, session.id) == ["test.created"]
    outbox = sorted(await table(database_url, schema.outbox), key=lambda r: r["idempotency_key"])
    assert [(r["idempotency_key"], r["next_attempt_ms"], r["state"]) for r in outbox] == [
        ("a", NOW, "pending"),
        ("b", NOW + 7, "pending"),
    ]


async def test_add_gives_the_ids_of_the_rows_it_wrote_leased(
    store: Store, database_url: str
) -> None:
    """What a handoff sends (outbox/handoff.py): the leased rows it wrote, not one whose
    (kind, key) was there already, nor a free one."""
    user = new_user()
    first, second = new_session(user), new_session(user)
    lease = Lease("worker-1", NOW + 30_000)
    async with store.transaction() as tx:
        await tx.accounts.add_user(user)
        await tx.outbox.add([message("taken")], NOW)
    async with store.autocommit() as db:
        assert await db.sessions.add(first, [], created(first), [message("free")]) == {}
        leased = await db.sessions.add(
            second,
            [],
            created(second),
            [message("mine", lease=lease), message("taken", lease=lease), message("free2")],
        )
    outbox = {r["idempotency_key"]: r for r in await table(database_url, schema.outbox)}
    assert leased == {(KIND, "mine"): outbox["mine"]["id"]}
    mine = outbox["mine"]
    assert (mine["lease_owner"], mine["lease_until_ms"], mine["attempts"]) == (
        "worker-1",
        NOW + 30_000,
        1,  # the handoff is its first attempt
    )
    assert [outbox[k]["lease_owner"] for k in ("taken", "free", "free2")] == [None] * 3


async def test_add_of_a_session_without_devices(store: Store, database_url: str) -> None:
    failed = dataclasses.replace(
        new_session(new_user(), count=0), user_id=None, status=SessionStatus.FAILED
    )
    async with store.autocommit() as db:
        await db.sessions.add(failed, [], created(failed))
        assert await db.sessions.get("/", failed.id) == failed
    assert await audit_events(database_url, failed.id) == ["test.created"]
    assert await table(database_url, schema.notifications) == []
    assert await table(database_url, schema.outbox) == []


async def test_commit_writes_status_answer_audit_and_outbox_together(
    store: Store, database_url: str
) -> None:
    _, device, session, notification = await seed(store)
    move = followed(
        session,
        Event.APPROVE,
        NOW + 10,
        detail="yes",
        message_id=notification.message_id,
        audit_data={"device": device.id},
    )
    async with store.autocommit() as db:
        assert await db.sessions.commit(move)
        stored = await db.sessions.get("/", session.id)
        answered = await db.sessions.open_notification("/", notification.message_id)
    assert stored == move.session
    assert (stored.status, stored.detail, stored.updated_ms) == (
        SessionStatus.APPROVED,
        "yes",
        NOW + 10,
    )
    assert answered is not None
    assert answered.notification.answered_ms == NOW + 10
    [audit] = await table(database_url, schema.audit, schema.audit.c.event == move.audit.event)
    assert (audit["subject"], audit["at_ms"], audit["data"]) == (
        session.id,
        NOW + 10,
        f'{{"device":"{device.id}","status":"accepted"}}',
    )
    assert await outbox_keys(database_url) == [f"{session.id}:approve"]


async def test_commit_without_a_message_leaves_notifications_open(
    store: Store, database_url: str
) -> None:
    _, _, session, notification = await seed(store)
    async with store.autocommit() as db:
        assert await db.sessions.commit(transition(session, Event.CANCEL, NOW + 1))
        found = await db.sessions.open_notification("/", notification.message_id)
    assert found is not None
    assert found.notification.answered_ms is None
    assert found.session.status is SessionStatus.CANCELED
    assert await audit_events(database_url, session.id) == ["test.created", "session.canceled"]


async def _nothing_written_since_seed(
    store: Store, url: str, session: PushSession, notification: Notification
) -> None:
    async with store.autocommit() as db:
        assert await db.sessions.get("/", session.id) == session
    [note] = await table(url, schema.notifications)
    assert note["answered_ms"] == notification.answered_ms
    assert await audit_events(url, session.id) == ["test.created"]
    assert await table(url, schema.outbox) == []


async def test_a_commit_after_the_session_finished_writes_nothing(
    store: Store, database_url: str
) -> None:
    _, _, session, notification = await seed(store)
    cancel = followed(session, Event.CANCEL, NOW + 1)
    late = followed(session, Event.APPROVE, NOW + 2, message_id=notification.message_id)
    async with store.autocommit() as db:
        assert await db.sessions.commit(cancel)
        assert not await db.sessions.commit(late)
        assert not await db.sessions.commit(followed(session, Event.EXPIRE, NOW + 3))
        assert await db.sessions.get("/", session.id) == cancel.session
    [note] = await table(database_url, schema.notifications)
    assert note["answered_ms"] is None
    assert await audit_events(database_url, session.id) == ["test.created", "session.canceled"]
    assert await outbox_keys(database_url) == [f"{session.id}:cancel"]


async def test_a_commit_past_the_deadline_writes_nothing(store: Store, database_url: str) -> None:
    _, _, session, notification = await seed(store)
    at_deadline = session.expires_ms
    # A transition made just before the deadline, committed at it.
    answer = followed(session, Event.DENY, at_deadline - 1, message_id=notification.message_id)
    answer = dataclasses.replace(
        answer, session=dataclasses.replace(answer.session, updated_ms=at_deadline)
    )
    async with store.autocommit() as db:
        assert not await db.sessions.commit(answer)
    await _nothing_written_since_seed(store, database_url, session, notification)
    # Expiry alone may still move it past the deadline.
    expiry = transition(session, Event.EXPIRE, at_deadline)
    async with store.autocommit() as db:
        assert await db.sessions.commit(expiry)
        assert await db.sessions.get("/", session.id) == expiry.session


async def test_a_commit_of_an_answered_notification_writes_nothing(
    store: Store, database_url: str
) -> None:
    _, _, session, notification = await seed(store)
    answered = dataclasses.replace(notification, answered_ms=NOW + 1)
    await change(
        database_url,
        update(schema.notifications)
        .where(schema.notifications.c.message_id == notification.message_id)
        .values(answered_ms=NOW + 1),
    )
    move = followed(session, Event.APPROVE, NOW + 2, message_id=notification.message_id)
    async with store.autocommit() as db:
        assert not await db.sessions.commit(move)
    await _nothing_written_since_seed(store, database_url, session, answered)


async def test_a_commit_with_another_sessions_notification_writes_nothing(
    store: Store, database_url: str
) -> None:
    user, _, session, notification = await seed(store)
    other = new_session(user)
    async with store.autocommit() as db:
        await db.sessions.add(other, [], created(other))
        move = followed(other, Event.APPROVE, NOW + 2, message_id=notification.message_id)
        assert not await db.sessions.commit(move)
        assert await db.sessions.get("/", other.id) == other
    await _nothing_written_since_seed(store, database_url, session, notification)


async def test_a_rolled_back_commit_writes_nothing(store: Store, database_url: str) -> None:
    _, _, session, notification = await seed(store)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with store.transaction() as tx:
            assert await tx.sessions.commit(followed(session, Event.CANCEL, NOW + 1))
            raise Boom
    await _nothing_written_since_seed(store, database_url, session, notification)


async def test_pending_lists_only_open_notifications_of_live_sessions(store: Store) -> None:
    user, device, session, notification = await seed(store)
    short = new_session(user, expires_ms=NOW + 10)
    later = new_session(user)
    gone = new_notification(short, device)
    second = new_notification(later, device, created_ms=NOW + 1)
    async with store.autocommit() as db:
        await db.sessions.add(short, [gone], created(short))
        await db.sessions.add(later, [second], created(later))
        found = await db.sessions.pending_for_device("/", "mech-1", NOW + 20, 50)
        assert found is not None
        assert (found.device, found.user) == (device, user)
        assert list(found.pending) == [(notification, session), (second, later)]
        limited = await db.sessions.pending_for_device("/", "mech-1", NOW + 20, 1)
        assert limited is not None
        assert list(limited.pending) == [(notification, session)]
        move = transition(session, Event.DENY, NOW + 21, message_id=notification.message_id)
        assert await db.sessions.commit(move)
        assert await db.sessions.commit(transition(later, Event.CANCEL, NOW + 21))
        empty_now = await db.sessions.pending_for_device("/", "mech-1", NOW + 22, 50)
        assert empty_now is not None
        assert (empty_now.device, empty_now.user, list(empty_now.pending)) == (device, user, [])
        assert await db.sessions.pending_for_device("/", "no-such-mechanism", NOW, 50) is None


async def test_expire_due_commits_the_transitions_it_is_given(
    store: Store, database_url: str
) -> None:
    user, _, _, _ = await seed(store)
    due = [new_session(user, expires_ms=NOW + i) for i in range(1, 6)]
    later = new_session(user, expires_ms=NOW + 1_000)
    async with store.autocommit() as db:
        for session in [*due, later]:
            await db.sessions.add(session, [], created(session))
        expire = sweeper_expiry(NOW + 100)
        first = await db.sessions.expire_due(NOW + 100, 3, expire)
        second = await db.sessions.expire_due(NOW + 100, 3, expire)
        third = await db.sessions.expire_due(NOW + 100, 3, expire)
        # Oldest deadline first.
        assert [m.session.id for m in first] == [s.id for s in due[:3]]
        assert {m.session.id for m in second} == {s.id for s in due[3:]}
        assert list(third) == []
        for move in [*first, *second]:
            assert await db.sessions.get("/", move.session.id) == move.session
            assert move.session.status is SessionStatus.EXPIRED
            assert move.session.updated_ms == NOW + 100
        assert await db.sessions.get("/", later.id) == later
    swept = await table(database_url, schema.audit, schema.audit.c.event == "test.swept")
    assert sorted(r["subject"] for r in swept) == sorted(s.id for s in due)
    assert {r["at_ms"] for r in swept} == {NOW + 100}
    assert await outbox_keys(database_url) == sorted(f"{s.id}:expired" for s in due)


async def test_expire_due_inside_a_transaction(store: Store) -> None:
    user, _, _, _ = await seed(store)
    due = new_session(user, expires_ms=NOW + 1)
    async with store.transaction() as tx:
        await tx.sessions.add(due, [], created(due))
        [move] = await tx.sessions.expire_due(NOW + 5, 10, sweeper_expiry(NOW + 5))
        assert await tx.sessions.get("/", due.id) == move.session


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.postgres
async def test_expire_due_skips_a_session_being_answered(store: Store, database_url: str) -> None:
    user, _, _, _ = await seed(store)
    due = new_session(user, expires_ms=NOW + 1)
    async with store.autocommit() as db:
        await db.sessions.add(due, [], created(due))
    holder = await asyncpg.connect(postgres_dsn(database_url))
    try:
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", due.id)
            async with store.autocommit() as db:
                assert await db.sessions.expire_due(NOW + 5, 10, sweeper_expiry(NOW + 5)) == []
        async with store.autocommit() as db:
            [move] = await db.sessions.expire_due(NOW + 5, 10, sweeper_expiry(NOW + 5))
        assert move.session.id == due.id
    finally:
        await holder.close()
