"""Device use cases: registration by QR code, refresh of the push token, polling (seed 000).

Every refusal is a BadDeviceMessage: the device face renders them all as the same CREST 400,
while the specific reason goes to the log.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pushgate.accounts.model import check_username
from pushgate.accounts.service import require_realm
from pushgate.audit.model import AuditEntry
from pushgate.changes import DeviceChange, Follower, follow
from pushgate.clock import Clock
from pushgate.devices.enrollment import QrSettings, new_registration, registration_uri
from pushgate.devices.model import (
    Device,
    DeviceStatus,
    DeviceUpdate,
    PendingRegistration,
    redact_token,
)
from pushgate.errors import BadDeviceMessage, NotFound
from pushgate.outbox.model import OutboxMessage
from pushgate.protocol import device_messages as dm
from pushgate.protocol.push_payload import push_jwt
from pushgate.sessions.pushes import push_claims
from pushgate.store.ports import Store
from pushgate.transports.webpush_wire import parse_subscription

log = logging.getLogger("pushgate.devices")
MAX_PENDING = 50
# The push token to keep for a (communicationType, app token): with SNS the endpoint ARN made
# from it (delivery/endpoints.py). Called before the transaction: no network inside one.
PushEndpoint = Callable[[str, str], Awaitable[str]]
DEFAULT_DEVICE_NAME = "Push Device"  # what AM names every push device profile


@dataclass(frozen=True, slots=True)
class StartedRegistration:
    registration: PendingRegistration
    uri: str


@dataclass(frozen=True, slots=True)
class PendingPush:
    message_id: str
    jwt: str


class DeviceService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        qr: QrSettings,
        registration_ttl: int,
        skew: int,
        *,
        followers: Sequence[Follower] = (),
        on_outbox: Callable[[], None] = lambda: None,
        push_endpoint: PushEndpoint | None = None,
    ) -> None:
        self._push_endpoint = push_endpoint
        self._followers = tuple(followers)  # their rows commit with the registration
        self._on_outbox = on_outbox
        self._store = store
        self._clock = clock
        self._qr = qr
        self._registration_ttl = registration_ttl
        self._skew = skew

    async def start_registration(self, realm_name: str, username: str) -> StartedRegistration:
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            realm = await require_realm(tx, realm_name)
            user = await tx.accounts.get_user(realm, check_username(username))
            if user is None:
                raise NotFound(f"user {username!r} does not exist in realm {realm}")
            registration = new_registration(user, now, self._registration_ttl)
            await tx.devices.add_registration(registration)
            await tx.audit.append(
                AuditEntry(
                    realm, "registration.started", registration.message_id, now, {"user": user.id}
                )
            )
        return StartedRegistration(registration, registration_uri(registration, user, self._qr))

    async def register(self, realm: str, request: dm.MessageRequest) -> Device:
        now = self._clock.now_ms()
        message_id = str(request.message_id)
        token = await self._registration_token(realm, message_id, request.jwt, now)
        async with self._store.transaction() as tx:
            registration = await tx.devices.get_registration(realm, message_id)
            if registration is None:
                raise BadDeviceMessage(dm.REFUSED, reason="unknown registration message")
            verified = dm.verify_registration(
                request.jwt, registration.secret, registration.challenge
            )
            if not await tx.devices.complete_registration(message_id, now):
                raise BadDeviceMessage(dm.REFUSED, reason="registration used or expired")
            details = verified.device
            _check_push_channel(details)
            details = _with_token(details, token)
            device = Device(
                id=registration.device_id,
                realm=realm,
                user_id=registration.user_id,
                mechanism_uid=verified.mechanism_uid,
                secret=registration.secret,
                push_token=details.device_id,
                device_type=details.device_type,
                communication_type=details.communication_type,
                name=details.device_name or DEFAULT_DEVICE_NAME,
                status=DeviceStatus.ACTIVE,
                created_ms=now,
                updated_ms=now,
            )
            if not await tx.devices.add(device):
                raise BadDeviceMessage(dm.REFUSED, reason="mechanismUid already registered")
            await tx.audit.append(
                AuditEntry(
                    realm,
                    "device.registered",
                    device.id,
                    now,
                    {"user": device.user_id, "mechanismUid": device.mechanism_uid},
                )
            )
            outbox: tuple[OutboxMessage, ...] = ()
            if self._followers:
                registered = await tx.devices.get(realm, device.mechanism_uid)
                assert registered is not None  # added above, in this transaction
                change = DeviceChange("device.registered", device, registered[1].username, now)
                outbox = follow(change, self._followers)
                await tx.outbox.add(outbox, now)
        if outbox:
            self._on_outbox()
        log.info(
            "device registered",
            extra={
                "fields": {
                    "realm": realm,
                    "device": device.id,
                    "communicationType": device.communication_type,
                    "token": redact_token(device.push_token),
                }
            },
        )
        return device

    async def refresh(self, realm: str, request: dm.RefreshRequest) -> None:
        now = self._clock.now_ms()
        token = await self._refresh_token(realm, request)
        async with self._store.transaction() as tx:
            found = await tx.devices.get(realm, request.mechanism_uid)
            if found is None or found[1].username != request.username:
                raise BadDeviceMessage(dm.REFUSED, reason="no such device for this user")
            device = found[0]
            # An inactive device (its token died) comes back with the token it sends now.
            if device.status not in (DeviceStatus.ACTIVE, DeviceStatus.INACTIVE):
                raise BadDeviceMessage(dm.REFUSED, reason=f"device is {device.status}")
            details = dm.verify_refresh(request.jwt, device.secret, request.mechanism_uid)
            _check_push_channel(details)
            details = _with_token(details, token)
            # A refresh has no challenge, so the JWT itself is made single-use. A device that
            # re-sends its last refresh (its answer got lost) changes nothing and gets its 200;
            # an older one that would roll the token back is refused.
            digest = hashlib.sha256(request.jwt.encode()).hexdigest()
            if not await tx.devices.consume_message(digest, realm, now):
                if _already_applied(device, details):
                    return
                raise BadDeviceMessage(dm.REFUSED, reason="refresh replayed")
            update = DeviceUpdate(
                push_token=details.device_id,
                device_type=details.device_type,
                communication_type=details.communication_type,
                name=details.device_name,
            )
            await tx.devices.update(device.id, update, now)
            await tx.audit.append(
                AuditEntry(
                    realm,
                    "device.refreshed",
                    device.id,
                    now,
                    {"communicationType": details.communication_type},
                )
            )
        log.info(
            "device refreshed",
            extra={
                "fields": {
                    "realm": realm,
                    "device": device.id,
                    "token": redact_token(details.device_id),
                }
            },
        )

    async def _registration_token(
        self, realm: str, message_id: str, jwt: str, now: int
    ) -> str | None:
        """With a push endpoint (SNS): the token to keep, from a verified registration read
        before the transaction; None without one, or when the transaction will refuse."""
        if self._push_endpoint is None:
            return None
        async with self._store.autocommit() as db:
            registration = await db.devices.get_registration(realm, message_id)
        if registration is None or registration.completed_ms is not None:
            return None
        if registration.expires_ms <= now:
            return None
        verified = dm.verify_registration(jwt, registration.secret, registration.challenge)
        _check_push_channel(verified.device)
        details = verified.device
        return await self._push_endpoint(details.communication_type, details.device_id)

    async def _refresh_token(self, realm: str, request: dm.RefreshRequest) -> str | None:
        if self._push_endpoint is None:
            return None
        async with self._store.autocommit() as db:
            found = await db.devices.get(realm, request.mechanism_uid)
        if found is None or found[1].username != request.username:
            return None
        if found[0].status not in (DeviceStatus.ACTIVE, DeviceStatus.INACTIVE):
            return None
        details = dm.verify_refresh(request.jwt, found[0].secret, request.mechanism_uid)
        _check_push_channel(details)
        return await self._push_endpoint(details.communication_type, details.device_id)

    async def pending(self, realm: str, request: dm.PollRequest) -> list[PendingPush]:
        now = self._clock.now_ms()
        async with self._store.autocommit() as db:
            found = await db.sessions.pending_for_device(
                realm, request.mechanism_uid, now, MAX_PENDING
            )
        if found is None:
            raise BadDeviceMessage(dm.REFUSED, reason="unknown mechanismUid")
        device, user, rows = found.device, found.user, found.pending
        if device.status is not DeviceStatus.ACTIVE:
            raise BadDeviceMessage(dm.REFUSED, reason=f"device is {device.status}")
        # Read together with the device to save a round trip; shown only to a verified poll.
        dm.verify_poll(request.jwt, device.secret, device.mechanism_uid, now, self._skew)
        return [
            PendingPush(
                notification.message_id,
                push_jwt(
                    push_claims(notification, session, device, user, self._qr.lb_cookie),
                    device.secret,
                ),
            )
            for notification, session in rows
        ]


def _check_push_channel(details: dm.DeviceDetails) -> None:
    """A Web Push device is a browser: `deviceType` web, its PushSubscription as `deviceId`."""
    if details.communication_type.lower() != "webpush":
        return
    if details.device_type != "web":
        raise BadDeviceMessage(dm.REFUSED, reason="communicationType webpush needs deviceType web")
    try:
        parse_subscription(details.device_id)
    except ValueError as exc:
        raise BadDeviceMessage(dm.REFUSED, reason=f"not a push subscription: {exc}") from None


def _with_token(details: dm.DeviceDetails, token: str | None) -> dm.DeviceDetails:
    # The token made before the transaction from this same JWT (an SNS endpoint ARN).
    return details if token is None else dataclasses.replace(details, device_id=token)


def _already_applied(device: Device, details: dm.DeviceDetails) -> bool:
    return (
        device.push_token == details.device_id
        and device.device_type == details.device_type
        and device.communication_type == details.communication_type
        and details.device_name in (None, device.name)
    )
