"""Inbox use cases (issue 8): a relying party posts a message to a user, announced to the
user's devices with a silent `mtoken.inboxMessage.new` push through the outbox; a device lists,
reads and counts its user's messages with signed requests (protocol/inbox_messages.py)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence

from pushgate.accounts.service import require_realm
from pushgate.audit.model import NO_ORIGIN, AuditEntry, Origin
from pushgate.clock import Clock
from pushgate.devices.model import Device, DeviceStatus
from pushgate.errors import BadDeviceMessage, InvalidRequest, NotFound
from pushgate.inbox.model import Draft, InboxMessage, Page, detail, list_item, new_message
from pushgate.outbox.model import OutboxMessage
from pushgate.protocol import device_messages as dm
from pushgate.protocol import inbox_messages as rq
from pushgate.store.ports import Store

log = logging.getLogger("pushgate.inbox")
# The announcement rows of a new message for the user's active devices (delivery/).
Announce = Callable[[str, Sequence[Device], int], Iterable[OutboxMessage]]


class InboxService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        skew: int,
        *,
        announce: Announce = lambda _id, _devices, _at: (),
        on_outbox: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._skew = skew
        self._announce = announce
        self._on_outbox = on_outbox

    async def post(
        self, realm_name: str, username: str, draft: Draft, origin: Origin = NO_ORIGIN
    ) -> InboxMessage:
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            realm = await require_realm(tx, realm_name)
            # A name no user could have is simply not found, as for a session.
            user, devices = await tx.devices.user_and_active(realm, username)
            if user is None:
                raise NotFound(f"user {username!r} does not exist in realm {realm}")
            try:
                message = new_message(str(uuid.uuid4()), realm, user.id, draft, now)
            except ValueError as exc:
                raise InvalidRequest(str(exc)) from exc
            await tx.inbox.add(message)
            await tx.audit.append(
                AuditEntry(realm, "inbox.posted", message.id, now, {"user": user.id}).by(origin)
            )
            rows = tuple(self._announce(message.id, devices, now))
            await tx.outbox.add(rows, now)
        if rows:
            self._on_outbox()
        log.info(
            "inbox message posted",
            extra={"fields": {"realm": realm, "message": message.id, "devices": len(rows)}},
        )
        return message

    async def device(self, realm: str, action: str, request: dm.PollRequest) -> dict[str, object]:
        """One inbox action of a device; the JSON it gets back."""
        if action not in rq.ACTIONS:
            raise BadDeviceMessage("Unknown action", reason=f"_action={action!r}")
        now = self._clock.now_ms()
        async with self._store.autocommit() as db:
            found = await db.devices.get(realm, request.mechanism_uid)
        if found is None:
            raise BadDeviceMessage(dm.REFUSED, reason="unknown mechanismUid")
        device = found[0]
        if device.status is not DeviceStatus.ACTIVE:
            raise BadDeviceMessage(dm.REFUSED, reason=f"device is {device.status}")
        verified = rq.verify_inbox(
            action, request.jwt, device.secret, device.mechanism_uid, now, self._skew
        )
        user_id = device.user_id
        async with self._store.autocommit() as db:
            inbox = db.inbox
            if verified.action == rq.COUNT:
                return {"countUnread": await inbox.count_unread(realm, user_id)}
            if verified.action == rq.LIST:
                page = Page(verified.page, verified.size, verified.only_unread)
                messages = await inbox.page(realm, user_id, page)
                return {
                    "page": page.number,
                    "size": page.size,
                    "messages": [list_item(m) for m in messages],
                }
            if verified.action == rq.READ_ALL:
                await inbox.mark_all_read(realm, user_id, now)
                return {}
            assert verified.message_id is not None
            if verified.action == rq.READ:
                if not await inbox.mark_read(realm, user_id, verified.message_id, now):
                    raise BadDeviceMessage(dm.REFUSED, reason="no such inbox message")
                return {}
            message = await inbox.get(realm, user_id, verified.message_id)
        if message is None:
            raise BadDeviceMessage(dm.REFUSED, reason="no such inbox message")
        return detail(message)
