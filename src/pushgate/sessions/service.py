"""Push-session use cases: create (fan-out), read, cancel, answer, expire (seed 003, DESIGN.md).

Each use case is one commit. Terminal moves are values made by the machine (`transition`) and
committed by the store's compare-and-set together with their audit entry and outbox rows, so
of approve / deny / cancel / expire exactly one commits; a loser writes nothing and raises.
Features that must act on a change (pushes, webhooks) register a `Follower`; its outbox rows
commit with the change.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import anyio

from pushgate.accounts.model import RealmPolicy
from pushgate.audit.model import NO_ORIGIN, AuditEntry, Origin
from pushgate.changes import UserChange, UserEvent
from pushgate.clock import Clock
from pushgate.devices.model import DeviceStatus
from pushgate.errors import (
    BadDeviceMessage,
    Conflict,
    InvalidRequest,
    NotFound,
    RateLimited,
    Unprocessable,
)
from pushgate.outbox.handoff import Handoff
from pushgate.protocol import device_messages as dm
from pushgate.protocol.challenge import challenge_number, new_challenge, numbers_with, typed_code
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
from pushgate.sessions.model import Content, Notification, Operation, PushSession, SessionStatus
from pushgate.store.ports import Store, UnitOfWork

log = logging.getLogger("pushgate.sessions")
EXPIRE_BATCH = 500


# The denial that says "this wasn't me" (protocol/device_messages.py DENY_REASONS).
FRAUD_DENY_REASON = "UNEXPECTED_OPERATION"


def _answer_audit(device_id: str, event: Event, deny_reason: str | None) -> dict[str, object]:
    """What an answer's audit entry adds: the device, and for a denial its reason; a denial
    as "this wasn't me" is marked a fraud report, so the trail can be searched for them."""
    if event is not Event.DENY or not deny_reason:
        return {"device": device_id}
    data: dict[str, object] = {"device": device_id, "denyReason": deny_reason}
    if deny_reason == FRAUD_DENY_REASON:
        data["fraudReported"] = True
    return data


async def _default_policy(realm: str) -> RealmPolicy:
    return RealmPolicy()


def _wrong_answer(
    session: PushSession, notification: Notification, answer: dm.Answer
) -> str | None:
    """Why an approval does not count, or None: the number or code must be the session's, and
    an operation's approval must carry the hash of exactly its data (dynamic linking)."""
    if session.push_type is PushType.CHALLENGE and answer.number != notification.answer:
        return "wrong number picked"
    if session.push_type is PushType.CODE and (
        answer.code is None or not hmac.compare_digest(answer.code, session.answer_code or "")
    ):
        return "wrong code typed"
    data = session.operation.data if session.operation else None
    if data is not None and (
        answer.operation_hash is None
        or not hmac.compare_digest(answer.operation_hash, dm.operation_hash(data))
    ):
        return "approval not bound to the operation's data"
    return None


def _check_rate(nth_newest_ms: int | None, policy: RealmPolicy, now_ms: int) -> None:
    """RateLimited if the user had `creates_per_minute` sessions in the last minute (the N-th
    newest of them was created at `nth_newest_ms`); Retry-After is when that one leaves the
    window."""
    if nth_newest_ms is None:
        return
    frees_at = nth_newest_ms + RATE_WINDOW_MS
    # `now_ms` was read before the user's lock: a create that committed while this one waited
    # for it can be newer than `now_ms`. The wait is never longer than the window, nor 0.
    wait_seconds = -(-(frees_at - now_ms) // 1000)
    raise RateLimited(
        "too many sessions for this user; try again later",
        retry_after=min(RATE_WINDOW_MS // 1000, max(1, wait_seconds)),
        reason=f"{policy.creates_per_minute} creates in the last minute",
    )


@dataclass(frozen=True, slots=True)
class NewSession:
    username: str
    content: Content
    ttl_seconds: int | None = None  # None or 0: the default lifetime
    push_type: PushType | None = None  # None: the realm's default
    context: Mapping[str, object] | None = None
    operation: Operation | None = None
    idempotency_key: str | None = None
    request_hash: str = ""  # what the key must be reused with (a digest of the request)


IDEMPOTENCY_MS = 24 * 3600 * 1000
USER_LOCKED = "the user is locked"
# Every push failed for good and no device polls: nobody can answer (PingAM's
# TRANSMISSION_FAILURE; docs/PUSH.md "notificationCount").
UNDELIVERED = "no push could be delivered"
RATE_WINDOW_MS = 60_000


def _answer_code(push_type: PushType) -> str | None:
    if push_type is PushType.CHALLENGE:
        return str(challenge_number())
    if push_type is PushType.CODE:
        return typed_code()
    return None


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
        handoff: Handoff | None = None,
        policies: Callable[[str], Awaitable[RealmPolicy]] | None = None,
        observe: Callable[[PushSession, Event | None], None] = lambda _s, _e: None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._default_ttl = default_ttl_seconds
        self._max_ttl = max_ttl_seconds
        self._recheck = wait_recheck_seconds
        self._followers = tuple(followers)
        self._on_outbox = on_outbox  # wakes this process's outbox worker
        # A create's pushes go straight to this process's worker (outbox/handoff.py).
        self._handoff = handoff or Handoff((), lease_ms=0, capacity=0)
        self._policies = policies or _default_policy
        # Told of every committed create (event None) and terminal move: the metrics.
        self._observe = observe

    def _lifetime_ms(self, ttl_seconds: int | None) -> int:
        ttl = ttl_seconds or self._default_ttl
        if ttl < 0 or ttl > self._max_ttl:
            raise InvalidRequest(f"secondsToExpire must be between 0 and {self._max_ttl}")
        return ttl * 1000

    async def create(
        self, realm: str, request: NewSession, origin: Origin = NO_ORIGIN
    ) -> PushSession:
        """Fan a new session out to the user's active devices, within the realm's limits.

        One transaction: the idempotency key, the limits (under the user's lock, so they hold
        across processes), the cancel of the user's older pending session, the new session.
        """
        if len(compact_json(request.content.custom_payload()).encode()) > MAX_CUSTOM_PAYLOAD_BYTES:
            raise InvalidRequest(
                f"the notification exceeds the maximum of {MAX_CUSTOM_PAYLOAD_BYTES} bytes"
            )
        policy = await self._policies(realm)
        push_type = request.push_type or policy.default_push_type
        now = self._clock.now_ms()
        expires = now + self._lifetime_ms(request.ttl_seconds)
        session_id = str(uuid.uuid4())
        superseded: list[Transition] = []
        async with self._store.transaction() as db:
            # A retry waits here for the create it repeats, then finds its key. Locks in one
            # order everywhere (key, then user): no deadlock between two creates.
            if request.idempotency_key is not None:
                await db.sessions.lock_idempotency_key(realm, request.idempotency_key)
            await db.sessions.lock_user(realm, request.username)
            if request.idempotency_key is not None:
                earlier = await self._replayed(db, realm, request, now)
                if earlier is not None:
                    return earlier
            limits = await db.sessions.user_limits(
                realm, request.username, now - RATE_WINDOW_MS, policy.creates_per_minute
            )
            _check_rate(limits.nth_newest_ms, policy, now)
            user, devices = await db.devices.user_and_active(realm, request.username)
            if user is not None and user.locked:
                devices = []  # a locked user looks like one without devices (G4)
            code = _answer_code(push_type) if devices else None
            notifications = [
                self._notification(session_id, device.id, push_type, code, now)
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
                push_type=push_type,
                notification_count=len(notifications),
                detail=None,
                created_ms=now,
                expires_ms=expires,
                updated_ms=now,
                answer_code=code,
                context=request.context,
                operation=request.operation,
            )
            if policy.one_pending_per_user and notifications:
                for older in limits.pending:
                    if older.status_at(now) is SessionStatus.PENDING:
                        move = transition(
                            older,
                            Event.CANCEL,
                            now,
                            followers=self._followers,
                            detail="superseded by a newer session",
                            audit_data={"supersededBy": session_id},
                        )
                        if await db.sessions.commit(move):
                            superseded.append(move)
            audit = AuditEntry(
                realm,
                CREATED_EVENT,
                session.id,
                now,
                {"status": session.status.wire, "notifications": len(notifications)},
            ).by(origin)
            change = SessionChange(session, None, notifications, devices)
            # The lease runs from now, not from the create's start: it may have waited on locks.
            outbox = self._handoff.lease(follow(change, self._followers), self._clock.now_ms())
            leased = await db.sessions.add(session, notifications, audit, outbox)
            if request.idempotency_key is not None:
                await db.sessions.add_idempotency_key(
                    realm, request.idempotency_key, request.request_hash, session.id, now
                )
        for move in superseded:
            self._committed(move)
        self._observe(session, None)
        if outbox and not self._handoff.hand(outbox, leased, now, change):
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

    async def _replayed(
        self, db: UnitOfWork, realm: str, request: NewSession, now_ms: int
    ) -> PushSession | None:
        """The session an earlier create with this Idempotency-Key made, within 24 h."""
        assert request.idempotency_key is not None
        found = await db.sessions.find_idempotency_key(realm, request.idempotency_key)
        if found is None:
            return None
        request_hash, session_id, created_ms = found
        if created_ms <= now_ms - IDEMPOTENCY_MS:
            return None  # forgotten: the key starts over
        if request_hash != request.request_hash:
            raise Unprocessable(
                "this Idempotency-Key was used with another request in the last 24 hours"
            )
        earlier = await db.sessions.get(realm, session_id)
        assert earlier is not None  # written in the same commit as its key
        return earlier

    @staticmethod
    def _notification(
        session_id: str, device_id: str, push_type: PushType, code: str | None, now_ms: int
    ) -> Notification:
        numbers: tuple[int, ...] | None = None
        if push_type is PushType.CHALLENGE and code is not None:
            numbers = numbers_with(int(code))
        return Notification(
            message_id=new_message_id(MessageKind.AUTHENTICATE, now_ms),
            session_id=session_id,
            device_id=device_id,
            challenge=new_challenge(),
            numbers=numbers,
            answer=int(code) if code is not None else None,
            created_ms=now_ms,
        )

    def _committed(self, move: Transition) -> None:
        self._events.publish(move.session.id)
        self._observe(move.session, move.event)
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

    async def cancel(self, realm: str, session_id: str, origin: Origin = NO_ORIGIN) -> PushSession:
        now = self._clock.now_ms()
        async with self._store.autocommit() as db:
            session = await db.sessions.get(realm, session_id)
            if session is None:
                raise NotFound("no such session")
            move = transition(session, Event.CANCEL, now, followers=self._followers, origin=origin)
            if not await db.sessions.commit(move):
                raise Conflict("session is no longer sent", reason="cancel lost the race")
        self._committed(move)
        log.info("session canceled", extra={"fields": {"realm": realm, "session": session_id}})
        return move.session

    async def undelivered(self, realm: str, session_id: str) -> None:
        """The session's `notificationCount` fell to 0: it fails now rather than wait out its
        deadline, so its relying party and its journey learn it at once."""
        now = self._clock.now_ms()
        async with self._store.autocommit() as db:
            session = await db.sessions.get(realm, session_id)
            if session is None or session.notification_count > 0:
                return
            if session.status_at(now) is not SessionStatus.PENDING:
                return
            move = transition(
                session, Event.FAIL, now, followers=self._followers, detail=UNDELIVERED
            )
            if not await db.sessions.commit(move):
                return  # answered or ended meanwhile
        self._committed(move)
        log.warning(
            "session failed: no push could be delivered",
            extra={"fields": {"realm": realm, "session": session_id}},
        )

    async def answer(
        self, realm: str, request: dm.MessageRequest, origin: Origin = NO_ORIGIN
    ) -> PushSession:
        """A device's approve or deny (`_action=authenticate`, seed 000).

        An approval with the wrong number, code or operation binding is refused and counted:
        at the realm's `maxFailureCount` the session ends `error`. Denials and wrong answers
        count toward the user's lock; an approval resets the count.
        """
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
            wrong = _wrong_answer(session, notification, answer) if answer.approved else None
            if wrong is None:
                event = Event.APPROVE if answer.approved else Event.DENY
                try:
                    move = transition(
                        session,
                        event,
                        now,
                        followers=self._followers,
                        detail=answer.detail,
                        deny_reason=answer.deny_reason if event is Event.DENY else None,
                        message_id=message_id,
                        audit_data=_answer_audit(device.id, event, answer.deny_reason),
                        origin=origin.as_device(device.id),
                    )
                except Conflict as exc:
                    raise BadDeviceMessage(dm.REFUSED, reason=exc.reason) from exc
                if not await db.sessions.commit(move):
                    raise BadDeviceMessage(
                        dm.REFUSED, reason="message or session finished concurrently"
                    )
        if wrong is not None:
            await self._wrong(session, wrong, now)
            raise BadDeviceMessage(dm.REFUSED, reason=wrong)
        self._committed(move)
        if session.user_id is not None:
            if move.status is SessionStatus.DENIED:
                await self._count_failure(session, now)
            elif found.user_failures:
                async with self._store.autocommit() as db:
                    await db.accounts.reset_failures(session.user_id)
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

    async def _wrong(self, session: PushSession, reason: str, now: int) -> None:
        """Count a wrong answer on the session (ending it at the realm's limit) and the user."""
        policy = await self._policies(session.realm)
        async with self._store.autocommit() as db:
            counted = await db.sessions.record_failure(session.id, now)
            if counted is None:
                return  # it ended meanwhile
            self._events.publish(session.id)
            if counted.failure_count >= policy.max_failure_count:
                move = transition(
                    counted,
                    Event.FAIL,
                    now,
                    followers=self._followers,
                    detail="too many wrong answers",
                    audit_data={"failures": counted.failure_count, "last": reason},
                )
                if await db.sessions.commit(move):
                    self._committed(move)
        await self._count_failure(session, now)

    async def _count_failure(self, session: PushSession, now: int) -> None:
        if session.user_id is not None:
            await self.count_failure(
                session.realm, session.user_id, session.username, now, session_id=session.id
            )

    async def count_failure(
        self,
        realm: str,
        user_id: str,
        username: str,
        now: int,
        *,
        session_id: str | None = None,
        audit: AuditEntry | None = None,
    ) -> None:
        """One more consecutive denial or failure for the user (`audit`, if given, records
        what failed, in the same commit); at the realm's limit, a lock with its audit entry
        and its followers' rows, and the end of the user's pending sessions (a locked user
        approves nothing: PSD2 RTS art. 4(3)(b) "block"), in one commit. Journeys count their
        failed passwords here too."""
        policy = await self._policies(realm)
        ended: list[Transition] = []
        async with self._store.transaction() as tx:
            await tx.sessions.lock_user(realm, username)
            if audit is not None:
                await tx.audit.append(audit)
            user = await tx.accounts.record_failure(user_id, now, policy.lock_after_failures)
            if user is None or user.locked_ms != now:
                return
            limits = await tx.sessions.user_limits(user.realm, user.username, now, 1)
            for pending in limits.pending:
                if pending.status_at(now) is not SessionStatus.PENDING:
                    continue
                move = transition(
                    pending, Event.FAIL, now, followers=self._followers, detail=USER_LOCKED
                )
                if await tx.sessions.commit(move):
                    ended.append(move)
            change = UserChange(UserEvent.LOCKED, user.realm, user.username, now, session_id)
            await tx.audit.append(
                AuditEntry(
                    user.realm,
                    UserEvent.LOCKED.value,
                    user.id,
                    now,
                    {"username": user.username, "failures": user.failure_count},
                )
            )
            outbox = follow(change, self._followers)
            if outbox:
                await tx.outbox.add(outbox, now)
        for move in ended:
            self._committed(move)
        log.warning(
            "user locked",
            extra={
                "fields": {"realm": user.realm, "user": user.id, "failures": user.failure_count}
            },
        )
        if outbox:
            self._on_outbox()

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
