"""The SQL adapter on SQLite and PostgreSQL: compare-and-set, uniqueness, realm scoping."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from pushgate.accounts.model import Realm, User
from pushgate.devices.model import Device, DeviceStatus
from pushgate.errors import InvalidRequest
from pushgate.protocol.device_messages import DeviceDetails
from pushgate.protocol.push_payload import PushType
from pushgate.services import Services
from pushgate.sessions.model import Content, Notification, PushSession, SessionStatus
from pushgate.store import migrate, schema
from pushgate.store.ports import AuditEntry
from tests.support import FakeClock

NOW = 1_790_000_000_000


def _user(realm: str = "/", name: str = "alice") -> User:
    return User(str(uuid.uuid4()), realm, name, None, NOW)


def _device(user: User, mechanism_uid: str = "mech-1") -> Device:
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
        created_ms=NOW,
        updated_ms=NOW,
    )


def _session(user: User, expires_ms: int = NOW + 60_000) -> PushSession:
    return PushSession(
        id=str(uuid.uuid4()),
        realm=user.realm,
        username=user.username,
        user_id=user.id,
        status=SessionStatus.PENDING,
        content=Content("Sign in"),
        push_type=PushType.DEFAULT,
        notification_count=1,
        detail=None,
        created_ms=NOW,
        expires_ms=expires_ms,
        updated_ms=NOW,
    )


def _notification(session: PushSession, device: Device) -> Notification:
    return Notification(
        message_id=f"AUTHENTICATE:{uuid.uuid4()}{NOW}",
        session_id=session.id,
        device_id=device.id,
        challenge=b"c" * 32,
        numbers=(12, 34, 56),
        answer=34,
        created_ms=NOW,
    )


def _audit(session: PushSession) -> AuditEntry:
    return AuditEntry(session.realm, "session.created", session.id, {}, session.created_ms)


async def _seed(services: Services) -> tuple[User, Device, PushSession, Notification]:
    user = _user()
    device = _device(user)
    session = _session(user)
    notification = _notification(session, device)
    async with services.store.transaction() as tx:
        assert await tx.add_user(user)
        assert await tx.add_device(device)
        await tx.add_session(session, [notification], _audit(session))
    return user, device, session, notification


async def test_round_trip_of_every_entity(services: Services) -> None:
    user, device, session, notification = await _seed(services)
    async with services.store.transaction() as tx:
        assert await tx.get_user("/", "alice") == user
        assert await tx.get_device("/", "mech-1") == (device, user)
        assert await tx.active_devices(user.id) == [device]
        assert await tx.get_session("/", session.id) == session
        found = await tx.get_open_notification("/", notification.message_id)
        assert found is not None
        assert found.notification == notification
        assert (found.device, found.session) == (device, session)


async def test_duplicates_are_refused_without_breaking_the_transaction(
    services: Services,
) -> None:
    user, _, _, _ = await _seed(services)
    async with services.store.transaction() as tx:
        assert not await tx.add_realm(Realm("/", NOW))
        assert not await tx.add_user(_user())  # same realm and username
        assert not await tx.add_device(_device(user, "mech-1"))
        assert await tx.consume_message("d" * 64, "/", NOW)
        assert not await tx.consume_message("d" * 64, "/", NOW)
        # The transaction is still usable after the refused inserts (PostgreSQL would abort it
        # on a raised unique violation).
        assert await tx.get_user("/", "alice") == user


async def test_finish_session_is_a_compare_and_set(services: Services) -> None:
    _, _, session, _ = await _seed(services)
    async with services.store.transaction() as tx:
        assert await tx.finish_session(
            session.id, SessionStatus.APPROVED, "yes", NOW + 1, before_deadline=True
        )
        assert not await tx.finish_session(
            session.id, SessionStatus.DENIED, None, NOW + 2, before_deadline=True
        )
        stored = await tx.get_session("/", session.id)
    assert stored is not None
    assert (stored.status, stored.detail, stored.updated_ms) == (
        SessionStatus.APPROVED,
        "yes",
        NOW + 1,
    )


async def test_finish_before_deadline_refuses_a_late_answer(services: Services) -> None:
    _, _, session, _ = await _seed(services)
    async with services.store.transaction() as tx:
        assert not await tx.finish_session(
            session.id, SessionStatus.APPROVED, None, session.expires_ms, before_deadline=True
        )
        assert await tx.finish_session(
            session.id, SessionStatus.EXPIRED, None, session.expires_ms, before_deadline=False
        )


async def test_answer_notification_only_once(services: Services) -> None:
    _, _, _, notification = await _seed(services)
    async with services.store.transaction() as tx:
        assert await tx.answer_notification(notification.message_id, NOW + 1)
        assert not await tx.answer_notification(notification.message_id, NOW + 2)


async def test_a_failed_transaction_writes_nothing(services: Services) -> None:
    user = _user()

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with services.store.transaction() as tx:
            await tx.add_user(user)
            raise Boom
    async with services.store.transaction() as tx:
        assert await tx.get_user("/", "alice") is None


async def test_realms_do_not_see_each_other(services: Services) -> None:
    _, _, session, notification = await _seed(services)
    async with services.store.transaction() as tx:
        assert await tx.add_realm(Realm("/alpha", NOW))
        assert await tx.get_user("/alpha", "alice") is None
        assert await tx.get_device("/alpha", "mech-1") is None
        assert await tx.get_session("/alpha", session.id) is None
        assert await tx.get_open_notification("/alpha", notification.message_id) is None


async def test_pending_lists_only_open_notifications_of_live_sessions(
    services: Services,
) -> None:
    user, device, _, notification = await _seed(services)
    expired = _session(user, expires_ms=NOW + 10)
    late = _notification(expired, device)
    async with services.store.transaction() as tx:
        await tx.add_session(expired, [late], _audit(expired))
        found = await tx.device_and_pending("/", "mech-1", NOW + 20, 50)
        assert found is not None
        assert found[:2] == (device, user)
        assert [n.message_id for n, _ in found[2]] == [notification.message_id]
        await tx.answer_notification(notification.message_id, NOW + 21)
        assert await tx.device_and_pending("/", "mech-1", NOW + 22, 50) == (device, user, [])
        assert await tx.device_and_pending("/", "no-such-mechanism", NOW + 22, 50) is None


async def test_expire_due_takes_only_pending_sessions_past_their_deadline(
    services: Services,
) -> None:
    user, _, _, _ = await _seed(services)
    due = [_session(user, expires_ms=NOW + i) for i in range(1, 6)]
    later = _session(user, expires_ms=NOW + 1_000)
    async with services.store.transaction() as tx:
        for session in [*due, later]:
            await tx.add_session(session, [], _audit(session))
        first = await tx.expire_due(NOW + 100, 3)
        second = await tx.expire_due(NOW + 100, 3)
        third = await tx.expire_due(NOW + 100, 3)
    assert len(first) == 3
    assert len(second) == 2
    assert third == []
    assert {sid for sid, _ in [*first, *second]} == {s.id for s in due}
    async with services.store.engine.begin() as conn:  # type: ignore[attr-defined]
        query = select(schema.audit.c.subject).where(schema.audit.c.event == "session.expired")
        audited = (await conn.execute(query)).scalars().all()
    assert sorted(audited) == sorted(s.id for s in due)


async def test_update_device_keeps_name_when_absent(services: Services) -> None:
    _, device, _, _ = await _seed(services)
    async with services.store.transaction() as tx:
        await tx.update_device(device.id, DeviceDetails("new-token", "ios", "apns", None), NOW + 5)
        updated, _ = await tx.get_device("/", "mech-1") or (None, None)
    assert updated is not None
    assert (updated.push_token, updated.device_type, updated.communication_type) == (
        "new-token",
        "ios",
        "apns",
    )
    assert updated.name == "Pixel"
    assert updated.updated_ms == NOW + 5


async def test_audit_rows_are_written(services: Services) -> None:
    async with services.store.transaction() as tx:
        await tx.audit("/", "test.event", "subject-1", {"b": 2, "a": 1}, NOW)
    async with services.store.engine.begin() as conn:  # type: ignore[attr-defined]
        rows = (await conn.execute(select(schema.audit))).all()
    assert [(r.event, r.subject, r.data) for r in rows] == [
        ("test.event", "subject-1", '{"a":1,"b":2}')
    ]


async def test_migrations_are_idempotent(services: Services) -> None:
    engine = services.store.engine  # type: ignore[attr-defined]
    await migrate.upgrade(engine)
    assert await migrate.current_revision(engine) == "0001"
    async with engine.begin() as conn:
        count = (await conn.execute(select(func.count()).select_from(schema.realms))).scalar()
    assert count == 1


async def test_account_service_validates_names(services: Services, clock: FakeClock) -> None:
    with pytest.raises(InvalidRequest):
        await services.accounts.create_realm("no spaces")
    with pytest.raises(InvalidRequest):
        await services.accounts.create_user("/", "a:b", None)
    realm = await services.accounts.create_realm("/Alpha")
    assert realm.name == "/Alpha"
