"""What the outbox tests share: a follower that writes one row per session change, and a
pending session with one device."""

from __future__ import annotations

from collections.abc import Iterator

from pushgate.changes import Change, SessionChange
from pushgate.devices.model import Device, DeviceStatus
from pushgate.outbox.model import OutboxMessage
from pushgate.services import Services
from pushgate.sessions.model import Content, PushSession
from pushgate.sessions.service import NewSession

KIND = "test.record"


def record_changes(change: Change) -> Iterator[OutboxMessage]:
    if not isinstance(change, SessionChange):
        return
    event = change.event.value if change.event else "created"
    yield OutboxMessage(
        KIND,
        change.session.realm,
        f"{change.session.id}:{event}",
        {"session": change.session.id, "status": change.session.status.wire},
    )


async def pending_session(services: Services, username: str = "alice") -> PushSession:
    await services.accounts.create_user("/", username, None)
    started = await services.devices.start_registration("/", username)
    registration = started.registration
    async with services.store.transaction() as tx:
        await tx.devices.add(
            Device(
                id=registration.device_id,
                realm="/",
                user_id=registration.user_id,
                mechanism_uid=f"mech-{username}",
                secret=registration.secret,
                push_token="t",
                device_type="android",
                communication_type="gcm",
                name="Pixel",
                status=DeviceStatus.ACTIVE,
                created_ms=0,
                updated_ms=0,
            )
        )
    return await services.sessions.create("/", NewSession(username, Content("Sign in"), 60))
