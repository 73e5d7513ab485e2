"""The push handlers of the outbox (issue 8 "Reliable delivery"): send each row through its
device's transport and act on the answer.

At least once: a row is claimed under a lease, so a send in flight when its process dies is
made again once the lease runs out, with the same messageId and apns-id. Nothing is sent after
the session's deadline, nor a prompt once its session ended. A dead token makes the device
inactive at once; a transient failure is retried with backoff and jitter, never sooner than
the provider's Retry-After.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping

import anyio

from pushgate.accounts.model import User
from pushgate.changes import SessionChange
from pushgate.clock import Clock
from pushgate.delivery.endpoints import SnsEndpoints
from pushgate.delivery.model import (
    FINISHED_KIND,
    KIND,
    MAX_ATTEMPTS,
    NOTICE_KIND,
    RETRY_POLICY,
    SILENT_KIND,
    SNS,
    TRANSPORTS,
    PushFollower,
    finished_request,
    inbox_rows,
    notice_request,
    prompt_request,
    retry_delay_ms,
    route,
    silent_deadline,
    silent_rows,
)
from pushgate.devices.model import Device, DeviceStatus, redact_token
from pushgate.outbox.model import OutboxMessage, OutboxRow, RetryPolicy
from pushgate.outbox.worker import GiveUp, Handler, Outcome, Retry
from pushgate.protocol.push_payload import push_jwt
from pushgate.sessions.model import SessionStatus
from pushgate.sessions.ports import OpenNotification
from pushgate.sessions.pushes import push_claims
from pushgate.store.ports import Store
from pushgate.transports.base import (
    Delivered,
    PushRequest,
    Rejected,
    RetryAfter,
    SendResult,
    TokenGone,
    Transport,
)
from pushgate.transports.sns import SnsTransport

log = logging.getLogger("pushgate.delivery")
Beat = Callable[[], None]
# The `result` label of pushgate_deliveries_total: what the provider answered.
_RESULTS: Mapping[type[SendResult], str] = {
    Delivered: "delivered",
    RetryAfter: "retry",
    TokenGone: "token_gone",
    Rejected: "rejected",
}


class PushDelivery:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        transports: Mapping[str, Transport],
        *,
        lb_cookie: str,
        on_outbox: Callable[[], None] = lambda: None,
        rng: random.Random | None = None,
        on_result: Callable[[str, str], None] = lambda _transport, _result: None,
        on_undelivered: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._transports = dict(transports)
        self._lb_cookie = lb_cookie
        self._on_outbox = on_outbox
        self._rng = rng
        self._on_result = on_result  # (transport, result) of every send: the metrics
        # (realm, session id) of a session none of whose pushes can arrive any more.
        self._on_undelivered = on_undelivered
        self.follower = PushFollower(frozenset(self._transports))

    @property
    def available(self) -> Collection[str]:
        return self._transports.keys()

    @property
    def push_endpoint(self) -> SnsEndpoints | None:
        """What registration and refresh call to make a device's SNS endpoint, with SNS on."""
        sns = self._transports.get(SNS)
        return SnsEndpoints(sns) if isinstance(sns, SnsTransport) else None

    @property
    def handlers(self) -> Mapping[str, Handler]:
        return {
            KIND: self._prompt,
            FINISHED_KIND: self._fan_out,
            SILENT_KIND: self._silent,
            NOTICE_KIND: self._notice,
        }

    @property
    def handoff_kinds(self) -> Collection[str]:
        """What a create hands to this process's worker: its prompts (outbox/handoff.py)."""
        return (KIND,)

    @property
    def policies(self) -> Mapping[str, RetryPolicy]:
        return {KIND: RETRY_POLICY, SILENT_KIND: RETRY_POLICY, NOTICE_KIND: RETRY_POLICY}

    def inbox_rows(
        self, inbox_id: str, devices: Iterable[Device], at_ms: int
    ) -> list[OutboxMessage]:
        """The `mtoken.inboxMessage.new` rows of a new inbox message (inbox/service.py)."""
        return inbox_rows(inbox_id, devices, at_ms, self.available)

    async def keep(self, beat: Beat) -> None:
        """The background task that owns the transports: says at start which providers are
        not configured, and closes the transports when the runtime stops."""
        missing = [name for name in TRANSPORTS if name not in self._transports]
        if missing:
            log.warning(
                "push providers not configured; their devices are served by polling",
                extra={"fields": {"missing": missing}},
            )
        beat()
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await self.aclose()

    async def aclose(self) -> None:
        for transport in self._transports.values():
            await transport.aclose()

    # handlers -------------------------------------------------------------------------------

    async def _prompt(self, row: OutboxRow) -> Outcome:
        message_id = str(row.payload["messageId"])
        now = self._clock.now_ms()
        found = _created_with(row.context, message_id)
        if found is None:
            async with self._store.autocommit() as db:
                found = await db.sessions.open_notification(row.realm, message_id)
        if found is None:
            return self._skip(row, "no such notification")
        # The device as its create read it, or (a claimed row) as it is now: token, status.
        notification, session, device = found.notification, found.session, found.device
        if session.status_at(now) is not SessionStatus.PENDING:
            return self._skip(row, f"the session is {session.status_at(now).wire}")
        if notification.answered_ms is not None:
            return self._skip(row, "the notification was answered")
        transport = self._transport(device)
        if transport is None:
            return self._skip(row, f"device is {device.status} or served by polling")
        # The claims read the user's name only: the session's, the very one it was made for.
        user = User(device.user_id, session.realm, session.username, None, 0)
        claims = push_claims(notification, session, device, user, self._lb_cookie)
        request = prompt_request(notification, session, device, push_jwt(claims, device.secret))
        result = await transport.send(request)
        return await self._outcome(row, request, device, result, counted_in=session.id)

    async def _fan_out(self, row: OutboxRow) -> Outcome:
        """A finished session: a silent push row for each active device of its user, except
        the one that answered."""
        session_id = str(row.payload["session"])
        answered = row.payload.get("answered")
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            session = await tx.sessions.get(row.realm, session_id)
            if session is None:
                return self._skip(row, "no such session")
            _, devices = await tx.devices.user_and_active(row.realm, session.username)
            if isinstance(answered, str):
                found = await tx.sessions.open_notification(row.realm, answered)
                if found is not None:
                    devices = [d for d in devices if d.id != found.device.id]
            messages = silent_rows(session, str(row.payload["result"]), devices, self.available)
            await tx.outbox.add(messages, now)
        if messages:
            self._on_outbox()
        return None

    async def _silent(self, row: OutboxRow) -> Outcome:
        now = self._clock.now_ms()
        async with self._store.autocommit() as db:
            session = await db.sessions.get(row.realm, str(row.payload["session"]))
            owner = await db.devices.get(row.realm, str(row.payload["mechanismUid"]))
        if session is None or owner is None:
            return self._skip(row, "no such session or device")
        device = owner[0]
        if now >= silent_deadline(session):
            return self._skip(row, "too late: the prompt is long gone")
        transport = self._transport(device)
        if transport is None:
            return self._skip(row, f"device is {device.status} or served by polling")
        request = finished_request(session, device, str(row.payload["result"]))
        result = await transport.send(request)
        return await self._outcome(row, request, device, result)

    async def _notice(self, row: OutboxRow) -> Outcome:
        async with self._store.autocommit() as db:
            owner = await db.devices.get(row.realm, str(row.payload["mechanismUid"]))
        if owner is None:
            return self._skip(row, "no such device")
        device = owner[0]
        if self._clock.now_ms() >= int(str(row.payload["expiresMs"])):
            return self._skip(row, "too late")
        # A status change is for the device whose status changed, blocked or removed too;
        # only a dead token (inactive) is never sent to.
        wanted = bool(row.payload.get("anyStatus")) and device.status is not DeviceStatus.INACTIVE
        name = route(device, self.available)
        if name is None or not (wanted or device.status is DeviceStatus.ACTIVE):
            return self._skip(row, f"device is {device.status} or served by polling")
        request = notice_request(row.payload, device)
        result = await self._transports[name].send(request)
        return await self._outcome(row, request, device, result)

    # results --------------------------------------------------------------------------------

    def _transport(self, device: Device) -> Transport | None:
        if device.status is not DeviceStatus.ACTIVE:
            return None
        name = route(device, self.available)
        return None if name is None else self._transports[name]

    async def _outcome(
        self,
        row: OutboxRow,
        request: PushRequest,
        device: Device,
        result: SendResult,
        *,
        counted_in: str | None = None,
    ) -> Outcome:
        """What the worker does with the row; a push that failed for good leaves the count
        of the session it was counted in (`counted_in`)."""
        transport = route(device, self.available)
        fields: dict[str, object] = {
            "kind": row.kind,
            "messageId": request.message_id,
            "device": device.id,
            "transport": transport,
            "attempts": row.attempts,
        }
        self._on_result(transport or "none", _RESULTS[type(result)])
        if isinstance(result, Delivered):
            log.info(
                "push delivered", extra={"fields": {**fields, "providerId": result.provider_id}}
            )
            return None
        if isinstance(result, RetryAfter):
            delay = retry_delay_ms(row.attempts, result.seconds, self._rng)
            if row.attempts >= MAX_ATTEMPTS:
                return await self._failed(
                    row, fields, f"{result.reason}; no more tries", counted_in
                )
            if self._clock.now_ms() + delay >= request.expires_ms:
                reason = f"{result.reason}; the deadline comes before another try"
                return await self._failed(row, fields, reason, counted_in)
            return Retry(result.reason, after_ms=delay)
        if isinstance(result, TokenGone):
            return await self._token_gone(row, request, device, result, fields, counted_in)
        assert isinstance(result, Rejected)
        return await self._failed(row, fields, result.reason, counted_in)

    async def _failed(
        self, row: OutboxRow, fields: dict[str, object], reason: str, counted_in: str | None
    ) -> Outcome:
        if counted_in is not None:
            async with self._store.autocommit() as db:
                left = await db.sessions.uncount_notification(counted_in)
            await self._uncounted(row.realm, counted_in, left)
        log.warning("push failed", extra={"fields": {**fields, "reason": reason}})
        return GiveUp(reason)

    async def _uncounted(self, realm: str, session_id: str, left: int | None) -> None:
        if left == 0 and self._on_undelivered is not None:
            await self._on_undelivered(realm, session_id)

    async def _token_gone(
        self,
        row: OutboxRow,
        request: PushRequest,
        device: Device,
        result: TokenGone,
        fields: dict[str, object],
        counted_in: str | None,
    ) -> Outcome:
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            marked = await tx.devices.mark_inactive(device.id, request.token, result.since_ms, now)
            if not marked:
                current = await tx.devices.get(row.realm, device.mechanism_uid)
                fresh = current is not None and current[0].push_token != request.token
                if fresh and current is not None and current[0].status is DeviceStatus.ACTIVE:
                    # Refreshed while we sent: the new token gets the push, at once.
                    return Retry("the device has a new push token", after_ms=0)
            left = None
            if counted_in is not None:
                left = await tx.sessions.uncount_notification(counted_in)
        if counted_in is not None:
            await self._uncounted(row.realm, counted_in, left)
        log.warning(
            "push token gone; the device is inactive until it refreshes"
            if marked
            else "push token gone; the device had changed meanwhile",
            extra={
                "fields": {**fields, "reason": result.reason, "token": redact_token(request.token)}
            },
        )
        return None

    @staticmethod
    def _skip(row: OutboxRow, reason: str) -> Outcome:
        log.info(
            "push not sent", extra={"fields": {"kind": row.kind, "row": row.id, "reason": reason}}
        )
        return None


def _created_with(context: object, message_id: str) -> OpenNotification | None:
    """The notification, session and device of a prompt handed over by the create that made
    them (outbox/handoff.py), so that the send reads nothing back; None for a claimed row."""
    if not isinstance(context, SessionChange) or context.event is not None:
        return None
    notification = next((n for n in context.notifications if n.message_id == message_id), None)
    if notification is None:
        return None
    device = next((d for d in context.devices if d.id == notification.device_id), None)
    return None if device is None else OpenNotification(notification, device, context.session)
