"""Device use cases: registration by QR code, refresh of the push token, polling (seed 000).

Every refusal is a BadDeviceMessage: the device face renders them all as the same CREST 400,
while the specific reason goes to the log.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pushgate.accounts.model import User, check_username
from pushgate.accounts.service import require_realm
from pushgate.audit.model import NO_ORIGIN, AuditEntry, Origin, device_actor
from pushgate.changes import DeviceChange, Follower, follow
from pushgate.clock import Clock
from pushgate.devices.enrollment import QrSettings, new_registration, registration_uri
from pushgate.devices.model import (
    Device,
    DeviceStatus,
    DeviceUpdate,
    PendingRegistration,
    check_device_name,
    redact_token,
)
from pushgate.errors import BadDeviceMessage, NotFound
from pushgate.outbox.model import OutboxMessage
from pushgate.protocol import device_messages as dm
from pushgate.protocol.push_payload import push_jwt
from pushgate.sessions.pushes import push_claims
from pushgate.store.ports import Store, UnitOfWork
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

    async def register(
        self, realm: str, request: dm.MessageRequest, origin: Origin = NO_ORIGIN
    ) -> Device:
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
                ).by(origin.as_device(device.id))
            )
            outbox: tuple[OutboxMessage, ...] = ()
            registered = await tx.devices.get(realm, device.mechanism_uid)
            assert registered is not None  # added above, in this transaction
            username = registered[1].username
            if self._followers:
                change = DeviceChange("device.registered", device, username, now)
                outbox = follow(change, self._followers)
                await tx.outbox.add(outbox, now)
            retired = await self._retire_replaced(tx, device, username, now)
        if outbox or (retired and self._followers):
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

    async def refresh(
        self, realm: str, request: dm.RefreshRequest, origin: Origin = NO_ORIGIN
    ) -> None:
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
                ).by(origin.as_device(device.id))
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

    async def _retire_replaced(
        self, tx: UnitOfWork, device: Device, username: str, now: int
    ) -> int:
        """The phone registered again (same user, same push token: a reinstalled app, a new
        QR code): its older registrations are removed, so they stop counting and being
        notified, and the app is told. A blocked one stays blocked."""
        if not device.push_token:
            return 0
        retired = 0
        for older in await tx.devices.of_user(device.user_id):
            if older.id == device.id or older.push_token != device.push_token:
                continue
            allowed = (DeviceStatus.ACTIVE, DeviceStatus.INACTIVE)
            if older.status not in allowed:
                continue
            if await tx.devices.set_status(older.id, DeviceStatus.REMOVED, allowed, now):
                gone = dataclasses.replace(older, status=DeviceStatus.REMOVED, updated_ms=now)
                await self._record(
                    tx, DeviceChange("device.removed", gone, username, now), device_actor(device.id)
                )
                retired += 1
        return retired

    # Administration (issue 10): on /account by the user (no actor), or by an operator
    # (`actor`: "cli", "admin:<key id>"). Removed devices are gone for all of these.

    async def list_for_user(self, realm_name: str, username: str) -> list[Device]:
        """The user's devices that are not removed, oldest first; NotFound for no such user."""
        async with self._store.autocommit() as db:
            realm = await require_realm(db, realm_name)
            user = await db.accounts.get_user(realm, check_username(username))
            if user is None:
                raise NotFound(f"no user {username!r} in realm {realm}")
            devices = await db.devices.of_user(user.id)
        return [d for d in devices if d.status is not DeviceStatus.REMOVED]

    async def rename(
        self, realm: str, username: str, device_id: str, name: str, *, actor: str | None = None
    ) -> Device:
        check_device_name(name)
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            device, _ = await _users_device(tx, realm, username, device_id)
            await tx.devices.rename(device.id, name, now)
            await tx.audit.append(
                AuditEntry(
                    device.realm,
                    "device.renamed",
                    device.id,
                    now,
                    {"user": device.user_id, "name": name},
                    actor=actor,
                )
            )
        return dataclasses.replace(device, name=name, updated_ms=now)

    async def block(
        self, realm: str, username: str, device_id: str, *, actor: str | None = None
    ) -> Device:
        """No session notifies or accepts a blocked device until it is unblocked; the app is
        told (`mtoken.statusChange`). Blocking a blocked device changes nothing."""
        return await self._set_status(
            realm, username, device_id, DeviceStatus.BLOCKED, "device.blocked", actor
        )

    async def unblock(
        self, realm: str, username: str, device_id: str, *, actor: str | None = None
    ) -> Device:
        return await self._set_status(
            realm, username, device_id, DeviceStatus.ACTIVE, "device.unblocked", actor
        )

    async def remove(
        self, realm: str, username: str, device_id: str, *, actor: str | None = None
    ) -> Device:
        """The device is removed for good (its row stays, for the audit trail and so that the
        app can be told with `mtoken.statusChange`); it can never answer or refresh again."""
        return await self._set_status(
            realm, username, device_id, DeviceStatus.REMOVED, "device.removed", actor
        )

    async def _set_status(
        self,
        realm: str,
        username: str,
        device_id: str,
        status: DeviceStatus,
        event: DeviceEvent,
        actor: str | None,
    ) -> Device:
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            device, user = await _users_device(tx, realm, username, device_id)
            allowed = _FROM[status]
            if device.status not in allowed:
                return device  # already so (or blocked, for an unblock of an active device)
            if not await tx.devices.set_status(device.id, status, allowed, now):
                raise NotFound(f"no device {device_id} for user {username!r}")  # removed since
            changed = dataclasses.replace(device, status=status, updated_ms=now)
            await self._record(tx, DeviceChange(event, changed, user.username, now), actor)
        if self._followers:
            self._on_outbox()
        return changed

    async def _record(self, tx: UnitOfWork, change: DeviceChange, actor: str | None) -> None:
        device = change.device
        data = {"user": device.user_id, "mechanismUid": device.mechanism_uid}
        entry = AuditEntry(device.realm, change.type, device.id, change.at_ms, data, actor)
        await tx.audit.append(entry)
        if self._followers:
            await tx.outbox.add(follow(change, self._followers), change.at_ms)

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


DeviceEvent = Literal["device.removed", "device.blocked", "device.unblocked"]
# The statuses each change starts from: removal is from any status but removed.
_FROM: Mapping[DeviceStatus, tuple[DeviceStatus, ...]] = {
    DeviceStatus.BLOCKED: (DeviceStatus.ACTIVE, DeviceStatus.INACTIVE),
    DeviceStatus.ACTIVE: (DeviceStatus.BLOCKED,),
    DeviceStatus.REMOVED: (DeviceStatus.ACTIVE, DeviceStatus.INACTIVE, DeviceStatus.BLOCKED),
}


async def _users_device(
    tx: UnitOfWork, realm_name: str, username: str, device_id: str
) -> tuple[Device, User]:
    """The user's device that is not removed; NotFound naming what is missing."""
    realm = await require_realm(tx, realm_name)
    found = await tx.devices.get_by_id(realm, device_id) if len(device_id) <= 64 else None
    if found is None or found[1].username != username or found[0].status is DeviceStatus.REMOVED:
        raise NotFound(f"no device {device_id!r} for user {username!r} in realm {realm}")
    return found


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
