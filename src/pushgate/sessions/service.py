"""Push-session use cases: create (fan-out), read, cancel, answer, expire (seed 003, DESIGN.md).

Each use case is one commit. Terminal moves are values made by the machine (`transition`) and
committed by the store's compare-and-set together with their audit entry and outbox rows, so
of approve / deny / cancel / expire exactly one commits; a loser writes nothing and raises.
Features that must act on a change (pushes, webhooks) register a `Follower`; its outbox rows
commit with the change.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anyio

from pushgate.audit.model import AuditEntry
from pushgate.clock import Clock
from pushgate.devices.model import DeviceStatus
from pushgate.errors import BadDeviceMessage, Conflict, InvalidRequest, NotFound
from pushgate.protocol import device_messages as dm
from pushgate.protocol.challenge import new_challenge, number_challenge
from pushgate.protocol.encoding import compact_json
from pushgate.protocol.message_ids import MessageKind, new_message_id
from pushgate.protocol.push_payload import MAX_CUSTOM_PAYLOAD_BYTES, PushType
from pushgate.sessions.events import SessionEvents
from pushgate.sessions.machine import (
    CREATED_EVENT,
    Event,
    Follower,
    SessionChange,
    Transition,
    follow,
    transition,
)
from pushgate.sessions.model import Content, Notification, PushSession, SessionStatus
from pushgate.store.ports import Store

log = logging.getLogger("pushgate.sessions")
EXPIRE_BATCH = 500


@dataclass(frozen=True, slots=True)
class NewSession:
    username: str
    content: Content
    ttl_seconds: int | None = None  # None or 0: the default lifetime
    push_type: PushType = PushType.DEFAULT


class SessionService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: SessionEvents,
        *,
        default_ttl_seconds: int,
        max_ttl_seconds: int,
        wait_recheck_seconds: float,
        followers: Sequence[Follower] = (),
        on_outbox: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._default_ttl = default_ttl_seconds
        self._max_ttl = max_ttl_seconds
        self._recheck = wait_recheck_seconds
        self._followers = tuple(followers)
        self._on_outbox = on_outbox  # wakes this process's outbox worker

    def _lifetime_ms(self, ttl_seconds: int | None) -> int:
        ttl = ttl_seconds or self._default_ttl
        if ttl < 0 or ttl > self._max_ttl:
            raise InvalidRequest(f"secondsToExpire must be between 0 and {self._max_ttl}")
        return ttl * 1000

    async def create(self, realm: str, request: NewSession) -> PushSession:
        if len(compact_json(request.content.custom_payload()).encode()) > MAX_CUSTOM_PAYLOAD_BYTES:
            raise InvalidRequest(
                f"the notification exceeds the maximum of {MAX_CUSTOM_PAYLOAD_BYTES} bytes"
            )
        now = self._clock.now_ms()
        expires = now + self._lifetime_ms(request.ttl_seconds)
        session_id = str(uuid.uuid4())
        async with self._store.autocommit() as db:
            user, devices = await db.devices.user_and_active(realm, request.username)
            notifications = [
                self._notification(session_id, device.id, request.push_type, now)
                for device in devices
            ]
            # An unknown user and a user without devices look the same to the caller
            # (no user enumeration, ASVS 6.3.8): a session that failed at once.
            session = PushSession(
                id=session_id,
                realm=realm,
                username=request.username,
                user_id=user.id if user else None,
                status=SessionStatus.PENDING if notifications else SessionStatus.FAILED,
                content=request.content,
                push_type=request.push_type,
                notification_count=len(notifications),
                detail=None,
                created_ms=now,
                expires_ms=expires,
                updated_ms=now,
            )
            audit = AuditEntry(
                realm,
                CREATED_EVENT,
                session.id,
                now,
                {"status": session.status.wire, "notifications": len(notifications)},
            )
            outbox = follow(SessionChange(session, None, notifications), self._followers)
            await db.sessions.add(session, notifications, audit, outbox)
        if outbox:
            self._on_outbox()
        log.info(
            "session created",
            extra={
                "fields": {
                    "realm": realm,
                    "session": session.id,
                    "status": session.status.wire,
                    "notificationCount": session.notification_count,
                }
            },
        )
        return session

    @staticmethod
    def _notification(
        session_id: str, device_id: str, push_type: PushType, now_ms: int
    ) -> Notification:
        numbers: tuple[int, ...] | None = None
        answer: int | None = None
        if push_type is PushType.CHALLENGE:
            numbers, answer = number_challenge()
        return Notification(
            message_id=new_message_id(MessageKind.AUTHENTICATE, now_ms),
            session_id=session_id,
            device_id=device_id,
            challenge=new_challenge(),
            numbers=numbers,
            answer=answer,
            created_ms=now_ms,
        )

    def _committed(self, move: Transition) -> None:
        self._events.publish(move.session.id)
        if move.outbox:
            self._on_outbox()

    async def get(self, realm: str, session_id: str) -> PushSession:
        now = self._clock.now_ms()
        async with self._store.autocommit() as db:
            found = await db.sessions.get(realm, session_id)
            if found is None:
                raise NotFound("no such session")
            if found.status_at(now) is found.status:
                return found
            # Past its deadline but not yet swept: write the expiry down now, so that a read
            # never goes back and the expiry's followers run exactly once.
            move = transition(found, Event.EXPIRE, now, followers=self._followers)
            if await db.sessions.commit(move):
                self._committed(move)
                return move.session
            reread = await db.sessions.get(realm, session_id)
        assert reread is not None  # sessions are never deleted
        return reread

    async def wait(self, realm: str, session_id: str, timeout_seconds: float) -> PushSession:
        """The session as soon as it leaves `sent`, or as it is after `timeout_seconds`.

        Woken by this process's transitions and, on PostgreSQL, by other processes' through
        LISTEN/NOTIFY; a re-read every `wait_recheck_seconds` covers what no one announces
        (SQLite with several processes, a listener reconnecting).
        """
        with anyio.move_on_after(timeout_seconds):
            while True:
                async with self._events.subscribe(session_id) as finished:
                    session = await self.get(realm, session_id)
                    if session.status.terminal:
                        return session
                    left = (session.expires_ms - self._clock.now_ms()) / 1000
                    with anyio.move_on_after(max(0.0, min(self._recheck, left))):
                        await finished.wait()
        return await self.get(realm, session_id)

    async def cancel(self, realm: str, session_id: str) -> PushSession:
        now = self._clock.now_ms()
        async with self._store.autocommit() as db:
            session = await db.sessions.get(realm, session_id)
            if session is None:
                raise NotFound("no such session")
            move = transition(session, Event.CANCEL, now, followers=self._followers)
            if not await db.sessions.commit(move):
                raise Conflict("session is no longer sent", reason="cancel lost the race")
        self._committed(move)
        log.info("session canceled", extra={"fields": {"realm": realm, "session": session_id}})
        return move.session

    async def answer(self, realm: str, request: dm.MessageRequest) -> PushSession:
        """A device's approve or deny (`_action=authenticate`, seed 000)."""
        now = self._clock.now_ms()
        message_id = str(request.message_id)
        async with self._store.autocommit() as db:
            found = await db.sessions.open_notification(realm, message_id)
            if found is None:
                raise BadDeviceMessage(dm.REFUSED, reason="unknown authentication message")
            notification, device, session = found.notification, found.device, found.session
            if device.status is not DeviceStatus.ACTIVE:
                raise BadDeviceMessage(dm.REFUSED, reason=f"device is {device.status}")
            answer = dm.verify_authentication(request.jwt, device.secret, notification.challenge)
            if notification.answered_ms is not None:
                raise BadDeviceMessage(dm.REFUSED, reason="message already answered")
            if (
                session.push_type is PushType.CHALLENGE
                and answer.approved
                and answer.number != notification.answer
            ):
                # AM 8.1: a wrong number is refused and the notification stays open.
                raise BadDeviceMessage(dm.REFUSED, reason="wrong number picked")
            event = Event.APPROVE if answer.approved else Event.DENY
            try:
                move = transition(
                    session,
                    event,
                    now,
                    followers=self._followers,
                    detail=answer.detail,
                    message_id=message_id,
                    audit_data={"device": device.id},
                )
            except Conflict as exc:
                raise BadDeviceMessage(dm.REFUSED, reason=exc.reason) from exc
            if not await db.sessions.commit(move):
                raise BadDeviceMessage(
                    dm.REFUSED, reason="message or session finished concurrently"
                )
        self._committed(move)
        log.info(
            "session answered",
            extra={
                "fields": {
                    "realm": realm,
                    "session": session.id,
                    "status": move.status.wire,
                    "device": device.id,
                }
            },
        )
        return move.session

    async def expire_due(self, limit: int = EXPIRE_BATCH) -> int:
        now = self._clock.now_ms()

        def expire(session: PushSession) -> Transition:
            return transition(session, Event.EXPIRE, now, followers=self._followers)

        async with self._store.autocommit() as db:
            expired = await db.sessions.expire_due(now, limit, expire)
        for move in expired:
            self._committed(move)
        if expired:
            log.info("sessions expired", extra={"fields": {"count": len(expired)}})
        return len(expired)
