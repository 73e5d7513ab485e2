"""What a notification puts on the wire to its device: the push JWT claims (spec §5.1). Pure.

Built from stored rows on demand, so a push re-sent or fetched by polling carries the same
claims as the first one.
"""

from __future__ import annotations

from pushgate.accounts.model import User
from pushgate.devices.model import Device
from pushgate.protocol.push_payload import PushClaims
from pushgate.sessions.model import Notification, PushSession


def push_claims(
    notification: Notification, session: PushSession, device: Device, user: User, lb_cookie: str
) -> PushClaims:
    return PushClaims(
        mechanism_uid=device.mechanism_uid,
        challenge=notification.challenge,
        lb_cookie=lb_cookie,
        # The device computes its own expiry as i + t (spec §5.3).
        ttl_seconds=max(1, (session.expires_ms - notification.created_ms) // 1000),
        created_ms=notification.created_ms,
        message=session.content.message,
        push_type=session.push_type,
        username=user.username,
        numbers=notification.numbers,
        custom_payload=session.content.custom_payload(),
        context=dict(session.context) if session.context is not None else None,
        operation=_operation(session),
    )


def _operation(session: PushSession) -> dict[str, object] | None:
    """The `o` claim: what the device shows and, for its data, binds its approval to."""
    if session.operation is None:
        return None
    claim: dict[str, object] = {"id": session.id, "name": session.operation.name}
    if session.operation.data is not None:
        claim["data"] = session.operation.data
    return claim
