"""The unit of work's contract, on SQLite and PostgreSQL alike (`store/ports.py`): every area
round-trips its models; uniqueness and compare-and-sets refuse without breaking a transaction;
a transition commits status, audit entry, outbox rows and answered notification together, and
a losing one writes nothing at all; the outbox leases rows to one worker at a time.

What a call wrote is checked in the tables themselves, read through a separate engine.
"""

from __future__ import annotations

import base64
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio
import asyncpg
import pytest
from sqlalchemy import Table, delete, insert, select, update

from pushgate.accounts.model import ApiKey, Realm, User
from pushgate.audit.model import AuditEntry
from pushgate.devices.model import Device, DeviceStatus, DeviceUpdate, PendingRegistration
from pushgate.errors import SecretKeyMismatch
from pushgate.outbox.model import OutboxMessage, OutboxState
from pushgate.protocol.push_payload import PushType
from pushgate.sessions.machine import Event, Transition, transition
from pushgate.sessions.model import Content, Notification, PushSession, SessionStatus
from pushgate.store import migrate, schema
from pushgate.store.engine import create_engine, is_postgres, postgres_dsn
from pushgate.store.ports import Store
from pushgate.store.postgres.listen import FINISHED_CHANNEL
from pushgate.store.sealing import KEY_BYTES, Sealer
from tests.support import TEST_SECRET_KEY

NOW = 1_790_000_000_000
LEASE = 30_000
KIND = "test.kind"


def open_store(url: str, key: bytes | None = None) -> Store:
    """The adapter the URL names, as wiring builds it."""
    sealer = Sealer(key or base64.b64decode(TEST_SECRET_KEY))
    if is_postgres(url):
        from pushgate.store.postgres import PostgresStore

        return PostgresStore(url, sealer, pool_size=4)
    from pushgate.store.sqlite import SqliteStore

    return SqliteStore(url, sealer)


async def empty(url: str) -> None:
    """Every row gone but the root realm the first migration makes."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for table in reversed(schema.metadata.sorted_tables):
                await conn.execute(delete(table))
            await conn.execute(insert(schema.realms).values(name="/", created_ms=0))
    finally:
        await engine.dispose()


async def table(url: str, which: Table, *where: Any) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.execute(select(which).where(*where))
            return [dict(row._mapping) for row in found]
    finally:
        await engine.dispose()


async def change(url: str, statement: Any) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(statement)
    finally:
        await engine.dispose()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    await empty(database_url)
    opened = open_store(database_url)
    try:
        yield opened
    finally:
        await opened.aclose()


# models -------------------------------------------------------------------------------------


def new_user(realm: str = "/", name: str = "alice") -> User:
    return User(str(uuid.uuid4()), realm, name, None, NOW)


def new_device(user: User, mechanism_uid: str = "mech-1", created_ms: int = NOW) -> Device:
    return Device(
        id=str(uuid.uuid4()),
        realm=user.realm,
        user_id=user.id,
        mechanism_uid=mechanism_uid,
        secret=b"s" * 32,
        push_token="token-abcdef",
        device_type="android",
        communication_type="gcm",
        name="Pixel",
        status=DeviceStatus.ACTIVE,
        created_ms=created_ms,
        updated_ms=created_ms,
    )


def new_session(user: User, expires_ms: int = NOW + 60_000, count: int = 1) -> PushSession:
    return PushSession(
        id=str(uuid.uuid4()),
        realm=user.realm,
        username=user.username,
        user_id=user.id,
        status=SessionStatus.PENDING,
        content=Content("Sign in", "sub", "body", '{"k":1}'),
        push_type=PushType.CHALLENGE,
        notification_count=count,
        detail=None,
        created_ms=NOW,
        expires_ms=expires_ms,
        updated_ms=NOW,
    )


def new_notification(session: PushSession, device: Device, created_ms: int = NOW) -> Notification:
    return Notification(
        message_id=f"AUTHENTICATE:{uuid.uuid4()}{created_ms}",
        session_id=session.id,
        device_id=device.id,
        challenge=b"c" * 32,
        numbers=(12, 34, 56),
        answer=34,
        created_ms=created_ms,
    )


def created(session: PushSession) -> AuditEntry:
    return AuditEntry(session.realm, "test.created", session.id, session.created_ms, {"n": 1})


def message(key: str, kind: str = KIND, **fields: Any) -> OutboxMessage:
    return OutboxMessage(kind, "/", key, {"key": key}, **fields)


def followed(session: PushSession, event: Event, now: int, **kw: Any) -> Transition:
    """The machine's transition with one outbox row, as a follower would add it."""
    move = transition(session, event, now, **kw)
    return dataclasses.replace(move, outbox=(message(f"{session.id}:{event}"),))


async def seed(store: Store) -> tuple[User, Device, PushSession, Notification]:
    user = new_user()
    device = new_device(user)
    session = new_session(user)
    notification = new_notification(session, device)
    async with store.transaction() as tx:
        assert await tx.accounts.add_user(user)
        assert await tx.devices.add(device)
        await tx.sessions.add(session, [notification], created(session))
    return user, device, session, notification


async def audit_events(url: str, subject: str) -> list[str]:
    return [r["event"] for r in await table(url, schema.audit, schema.audit.c.subject == subject)]


async def outbox_keys(url: str) -> list[str]:
    return sorted(r["idempotency_key"] for r in await table(url, schema.outbox))


# accounts and devices -----------------------------------------------------------------------


async def test_round_trip_of_every_entity(store: Store) -> None:
    user, device, session, notification = await seed(store)
    key = ApiKey(str(uuid.uuid4()), "/", "h" * 64, NOW)
    registration = PendingRegistration(
        "REGISTER:abc", "/", user.id, str(uuid.uuid4()), b"r" * 32, b"k" * 32, NOW, NOW + 1
    )
    async with store.transaction() as tx:
        await tx.accounts.add_api_key(key)
        await tx.devices.add_registration(registration)
    async with store.autocommit() as db:
        assert await db.accounts.get_realm("/") == Realm("/", 0)
        assert await db.accounts.get_user("/", "alice") == user
        assert await db.accounts.find_api_key("h" * 64) == key
        assert await db.devices.get_registration("/", "REGISTER:abc") == registration
        assert await db.devices.get("/", "mech-1") == (device, user)
        assert await db.devices.active_for_user(user.id) == [device]
        assert await db.sessions.get("/", session.id) == session
        found = await db.sessions.open_notification("/", notification.message_id)
        assert found is not None
        assert (found.notification, found.device, found.session) == (notification, device, session)
        assert await db.accounts.find_api_key("x" * 64) is None
        assert await db.sessions.open_notification("/", "AUTHENTICATE:none") is None


async def test_duplicates_are_refused_without_breaking_the_transaction(store: Store) -> None:
    user, _, _, _ = await seed(store)
    async with store.transaction() as tx:
        assert not await tx.accounts.add_realm(Realm("/", NOW))
        assert not await tx.accounts.add_user(new_user())  # same realm and username
        assert not await tx.devices.add(new_device(user, "mech-1"))
        assert await tx.devices.consume_message("d" * 64, "/", NOW)
        assert not await tx.devices.consume_message("d" * 64, "/", NOW)
        # Still usable after the refused inserts (PostgreSQL aborts on a raised violation).
        assert await tx.accounts.get_user("/", "alice") == user


async def test_a_failed_transaction_writes_nothing(store: Store, database_url: str) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with store.transaction() as tx:
            await tx.accounts.add_user(new_user())
            await tx.audit.append(AuditEntry("/", "test.event", "x", NOW))
            raise Boom
    async with store.autocommit() as db:
        assert await db.accounts.get_user("/", "alice") is None
    assert await table(database_url, schema.audit) == []


async def test_complete_registration_is_a_compare_and_set(store: Store) -> None:
    user = new_user()
    fresh = PendingRegistration("REGISTER:a", "/", user.id, "dev-a", b"r" * 32, b"k", NOW, NOW + 9)
    stale = dataclasses.replace(fresh, message_id="REGISTER:b", device_id="dev-b")
    async with store.transaction() as tx:
        await tx.accounts.add_user(user)
        await tx.devices.add_registration(fresh)
        await tx.devices.add_registration(stale)
    async with store.autocommit() as db:
        assert await db.devices.complete_registration("REGISTER:a", NOW + 1)
        assert not await db.devices.complete_registration("REGISTER:a", NOW + 2)
        assert not await db.devices.complete_registration("REGISTER:b", NOW + 9)  # expired
        done = await db.devices.get_registration("/", "REGISTER:a")
        assert await db.devices.get_registration("/alpha", "REGISTER:a") is None
    assert done is not None
    assert done.completed_ms == NOW + 1


async def test_user_and_active_devices_in_one_read(store: Store) -> None:
    user = new_user()
    lonely = new_user(name="bob")
    newer = new_device(user, "mech-new", created_ms=NOW + 5)
    older = new_device(user, "mech-old", created_ms=NOW)
    blocked = dataclasses.replace(new_device(user, "mech-x"), status=DeviceStatus.BLOCKED)
    async with store.transaction() as tx:
        await tx.accounts.add_user(user)
        await tx.accounts.add_user(lonely)
        for device in (newer, older, blocked):
            assert await tx.devices.add(device)
    async with store.autocommit() as db:
        assert await db.devices.user_and_active("/", "alice") == (user, [older, newer])
        assert await db.devices.active_for_user(user.id) == [older, newer]
        assert await db.devices.user_and_active("/", "bob") == (lonely, [])
        assert await db.devices.user_and_active("/", "nobody") == (None, [])
        assert await db.devices.user_and_active("/alpha", "alice") == (None, [])


async def test_update_device_keeps_the_name_unless_given(store: Store) -> None:
    _, device, _, _ = await seed(store)
    async with store.autocommit() as db:
        await db.devices.update(device.id, DeviceUpdate("new-token", "ios", "apns"), NOW + 5)
        kept = await db.devices.get("/", "mech-1")
        await db.devices.update(device.id, DeviceUpdate("t2", "ios", "apns", "iPhone"), NOW + 6)
        renamed = await db.devices.get("/", "mech-1")
    assert kept is not None
    assert renamed is not None
    assert kept[0] == dataclasses.replace(
        device,
        push_token="new-token",
        device_type="ios",
        communication_type="apns",
        updated_ms=NOW + 5,
    )
    assert (renamed[0].name, renamed[0].push_token, renamed[0].updated_ms) == (
        "iPhone",
        "t2",
        NOW + 6,
    )


async def test_realms_do_not_see_each_other(store: Store) -> None:
    _, _, session, notification = await seed(store)
    async with store.autocommit() as db:
        assert await db.accounts.add_realm(Realm("/alpha", NOW))
        assert await db.accounts.get_realm("/alpha") == Realm("/alpha", NOW)
        assert await db.accounts.get_user("/alpha", "alice") is None
        assert await db.devices.get("/alpha", "mech-1") is None
        assert await db.sessions.get("/alpha", session.id) is None
        assert await db.sessions.open_notification("/alpha", notification.message_id) is None
        assert await db.sessions.pending_for_device("/alpha", "mech-1", NOW, 10) is None


async def test_audit_entries_are_appended(store: Store, database_url: str) -> None:
    async with store.autocommit() as db:
        await db.audit.append(AuditEntry("/", "test.event", "subject-1", NOW, {"b": 2, "a": 1}))
    found = await table(database_url, schema.audit)
    assert [(r["realm"], r["event"], r["subject"], r["at_ms"], r["data"]) for r in found] == [
        ("/", "test.event", "subject-1", NOW, '{"a":1,"b":2}')
    ]


# sessions -----------------------------------------------------------------------------------


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


def _sweeper_expiry(now: int) -> Callable[[PushSession], Transition]:
    """An expiry whose audit event and outbox rows are the caller's own, not the store's."""

    def expire(session: PushSession) -> Transition:
        move = transition(session, Event.EXPIRE, now)
        return dataclasses.replace(
            move,
            audit=dataclasses.replace(move.audit, event="test.swept"),
            outbox=(message(f"{session.id}:expired"),),
        )

    return expire


async def test_expire_due_commits_the_transitions_it_is_given(
    store: Store, database_url: str
) -> None:
    user, _, _, _ = await seed(store)
    due = [new_session(user, expires_ms=NOW + i) for i in range(1, 6)]
    later = new_session(user, expires_ms=NOW + 1_000)
    async with store.autocommit() as db:
        for session in [*due, later]:
            await db.sessions.add(session, [], created(session))
        expire = _sweeper_expiry(NOW + 100)
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
        [move] = await tx.sessions.expire_due(NOW + 5, 10, _sweeper_expiry(NOW + 5))
        assert await tx.sessions.get("/", due.id) == move.session


# outbox -------------------------------------------------------------------------------------


async def test_outbox_add_keeps_the_first_of_a_kind_and_key(
    store: Store, database_url: str
) -> None:
    async with store.autocommit() as db:
        await db.outbox.add([message("k"), message("k", kind="other.kind")], NOW)
        await db.outbox.add([OutboxMessage(KIND, "/", "k", {"second": True}), message("j")], NOW)
        await db.outbox.add([message("i"), message("i")], NOW)
        await db.outbox.add([], NOW)
    found = await table(database_url, schema.outbox)
    assert sorted((r["kind"], r["idempotency_key"]) for r in found) == [
        ("other.kind", "k"),
        (KIND, "i"),
        (KIND, "j"),
        (KIND, "k"),
    ]
    [first] = [r for r in found if (r["kind"], r["idempotency_key"]) == (KIND, "k")]
    assert first["payload"] == '{"key":"k"}'


async def test_claim_leases_due_rows_oldest_first_and_counts_attempts(store: Store) -> None:
    async with store.autocommit() as db:
        await db.outbox.add([message("late", not_before_ms=NOW + 5)], NOW)
        await db.outbox.add([message("first")], NOW - 2)
        await db.outbox.add([message("second")], NOW - 1)
        await db.outbox.add([message("elsewhere", kind="other.kind")], NOW - 3)
        await db.outbox.add([message("future", not_before_ms=NOW + 60_000)], NOW)
        claimed = await db.outbox.claim([KIND], "w1", NOW + 5, LEASE, 2)
        rest = await db.outbox.claim([KIND], "w1", NOW + 5, LEASE, 10)
        assert await db.outbox.claim([], "w1", NOW + 5, LEASE, 10) == []
    assert [r.key for r in claimed] == ["first", "second"]
    assert [r.key for r in rest] == ["late"]
    row = claimed[0]
    assert (row.kind, row.realm, row.payload, row.state) == (
        KIND,
        "/",
        {"key": "first"},
        OutboxState.PENDING,
    )
    assert (row.lease_owner, row.lease_until_ms, row.attempts) == ("w1", NOW + 5 + LEASE, 1)
    assert (row.created_ms, row.updated_ms, row.next_attempt_ms) == (NOW - 2, NOW + 5, NOW - 2)


async def test_a_held_lease_is_not_claimable_until_it_expires(store: Store) -> None:
    async with store.autocommit() as db:
        await db.outbox.add([message("x")], NOW)
        [held] = await db.outbox.claim([KIND], "w1", NOW, LEASE, 10)
        assert await db.outbox.claim([KIND], "w2", NOW + LEASE - 1, LEASE, 10) == []
        [taken] = await db.outbox.claim([KIND], "w2", NOW + LEASE, LEASE, 10)
        assert (taken.id, taken.lease_owner, taken.attempts) == (held.id, "w2", 2)
        # The first owner lost its lease: nothing it does changes the row.
        assert not await db.outbox.complete(held.id, "w1", NOW + LEASE + 1)
        assert not await db.outbox.retry(held.id, "w1", NOW + LEASE + 1, NOW, "late")
        assert not await db.outbox.bury(held.id, "w1", NOW + LEASE + 1, "late")
        assert await db.outbox.get(held.id) == taken


async def test_complete_marks_done_once(store: Store) -> None:
    async with store.autocommit() as db:
        await db.outbox.add([message("x")], NOW)
        [row] = await db.outbox.claim([KIND], "w1", NOW, LEASE, 10)
        assert await db.outbox.complete(row.id, "w1", NOW + 1)
        assert not await db.outbox.complete(row.id, "w1", NOW + 2)
        done = await db.outbox.get(row.id)
        assert await db.outbox.claim([KIND], "w2", NOW + 10 * LEASE, LEASE, 10) == []
        assert await db.outbox.get(row.id + 1000) is None
    assert done is not None
    assert (done.state, done.lease_owner, done.lease_until_ms, done.updated_ms) == (
        OutboxState.DONE,
        None,
        None,
        NOW + 1,
    )


async def test_retry_releases_the_row_until_its_next_attempt(store: Store) -> None:
    async with store.autocommit() as db:
        await db.outbox.add([message("x")], NOW)
        [row] = await db.outbox.claim([KIND], "w1", NOW, LEASE, 10)
        assert not await db.outbox.retry(row.id, "w2", NOW + 1, NOW + 500, "not mine")
        assert await db.outbox.retry(row.id, "w1", NOW + 1, NOW + 500, "boom " * 400)
        retried = await db.outbox.get(row.id)
        assert await db.outbox.claim([KIND], "w2", NOW + 499, LEASE, 10) == []
        [again] = await db.outbox.claim([KIND], "w2", NOW + 500, LEASE, 10)
    assert retried is not None
    assert (retried.state, retried.lease_owner, retried.lease_until_ms) == (
        OutboxState.PENDING,
        None,
        None,
    )
    assert retried.next_attempt_ms == NOW + 500
    assert retried.last_error is not None
    assert retried.last_error.startswith("boom ")
    assert len(retried.last_error) <= 1000
    assert (again.attempts, again.lease_owner, again.last_error) == (2, "w2", retried.last_error)


async def test_bury_makes_a_row_dead_for_good(store: Store) -> None:
    async with store.autocommit() as db:
        await db.outbox.add([message("x")], NOW)
        [row] = await db.outbox.claim([KIND], "w1", NOW, LEASE, 10)
        assert not await db.outbox.bury(row.id, "w2", NOW + 1, "not mine")
        assert await db.outbox.bury(row.id, "w1", NOW + 1, "refused")
        dead = await db.outbox.get(row.id)
        assert await db.outbox.claim([KIND], "w1", NOW + 10 * LEASE, LEASE, 10) == []
        assert not await db.outbox.complete(row.id, "w1", NOW + 2)
    assert dead is not None
    assert (dead.state, dead.last_error, dead.lease_owner) == (OutboxState.DEAD, "refused", None)


async def test_outbox_stats(store: Store) -> None:
    async with store.autocommit() as db:
        empty_stats = await db.outbox.stats(NOW)
        await db.outbox.add([message(k) for k in "abcd"], NOW)
        await db.outbox.add([message("e", not_before_ms=NOW - 50)], NOW)
        claimed = await db.outbox.claim([KIND], "w1", NOW, LEASE, 3)
        by_key = {r.key: r for r in claimed}
        assert await db.outbox.complete(by_key["e"].id, "w1", NOW)
        assert await db.outbox.bury(by_key["a"].id, "w1", NOW, "refused")
        stats = await db.outbox.stats(NOW)
    assert (empty_stats.pending, empty_stats.dead, empty_stats.oldest_due_ms) == (0, 0, None)
    assert (stats.pending, stats.dead, stats.oldest_due_ms) == (3, 1, NOW)


# store --------------------------------------------------------------------------------------


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


# PostgreSQL only ----------------------------------------------------------------------------


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    with anyio.fail_after(seconds):
        while not condition():
            await anyio.sleep(0.02)


async def probe_until_heard(url: str, heard: list[str], seconds: float = 10.0) -> None:
    """NOTIFY a probe until the listener hears one: before it is connected, nothing is."""
    conn = await asyncpg.connect(postgres_dsn(url))
    try:
        with anyio.fail_after(seconds):
            while "probe" not in heard:
                await conn.execute("SELECT pg_notify($1, 'probe')", FINISHED_CHANNEL)
                await anyio.sleep(0.05)
    finally:
        await conn.close()
    heard.clear()


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
                await db.sessions.expire_due(NOW + 5, 10, _sweeper_expiry(NOW + 5))
            await until(lambda: set(heard) >= {session.id, *(s.id for s in due)})
            tasks.cancel_scope.cancel()
    finally:
        await other.aclose()
    assert sorted(heard) == sorted([session.id, *(s.id for s in due)])


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
                assert await db.sessions.expire_due(NOW + 5, 10, _sweeper_expiry(NOW + 5)) == []
        async with store.autocommit() as db:
            [move] = await db.sessions.expire_due(NOW + 5, 10, _sweeper_expiry(NOW + 5))
        assert move.session.id == due.id
    finally:
        await holder.close()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.postgres
async def test_concurrent_claims_never_share_a_row(database_url: str) -> None:
    """Two workers, each on its own pool, claim in a loop at the same time until nothing is
    left: every row goes to exactly one of them."""
    await empty(database_url)
    workers = {"a": open_store(database_url), "b": open_store(database_url)}
    rows_per_round, rounds = 300, 5

    async def claim_all(owner: str, start: anyio.Event, claimed: list[int]) -> None:
        await start.wait()
        while True:
            async with workers[owner].autocommit() as db:
                rows = await db.outbox.claim([KIND], owner, NOW, 10 * LEASE, 7)
            if not rows:
                return
            claimed.extend(r.id for r in rows)

    try:
        for round_ in range(rounds):
            async with workers["a"].autocommit() as db:
                await db.outbox.add([message(f"{round_}:{i}") for i in range(rows_per_round)], NOW)
            claimed: dict[str, list[int]] = {"a": [], "b": []}
            start = anyio.Event()
            async with anyio.create_task_group() as tasks:
                for owner in workers:
                    tasks.start_soon(claim_all, owner, start, claimed[owner])
                await anyio.sleep(0.01)
                start.set()
            both: Sequence[int] = claimed["a"] + claimed["b"]
            assert len(both) == len(set(both)) == rows_per_round
            assert claimed["a"]
            assert claimed["b"]
    finally:
        for store in workers.values():
            await store.aclose()
