"""What push sessions need from persistence (DESIGN.md layer 2).

`add` and `commit` are atomic on their own (one statement on PostgreSQL), so the hot path runs
them in autocommit: the session or the transition, its audit entry, its outbox rows and the
announcement to other processes commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pushgate.accounts.model import User
from pushgate.audit.model import AuditEntry
from pushgate.devices.model import Device
from pushgate.outbox.model import LeasedIds, OutboxMessage
from pushgate.sessions.machine import Transition
from pushgate.sessions.model import Notification, PushSession


@dataclass(frozen=True, slots=True)
class OpenNotification:
    """A notification with what answering it needs: its device, its session and the count of
    its user's consecutive failures (an approval resets it)."""

    notification: Notification
    device: Device
    session: PushSession
    user_failures: int = 0


@dataclass(frozen=True, slots=True)
class DevicePending:
    """A device, its user and its open notifications of live sessions, oldest first."""

    device: Device
    user: User
    pending: Sequence[tuple[Notification, PushSession]]


@dataclass(frozen=True, slots=True)
class UserLimits:
    """Of one user: when the `limit`-th newest session created after `since_ms` was created
    (None: fewer were), and the pending sessions, oldest first."""

    nth_newest_ms: int | None
    pending: Sequence[PushSession]


class Sessions(Protocol):
    async def add(
        self,
        session: PushSession,
        notifications: Sequence[Notification],
        audit: AuditEntry,
        outbox: Sequence[OutboxMessage] = (),
    ) -> LeasedIds:
        """Insert the session, its notifications, its audit entry and outbox rows, atomically;
        the ids of the outbox rows written leased (an existing (kind, key) is not)."""
        ...

    async def get(self, realm: str, session_id: str) -> PushSession | None: ...

    async def open_notification(self, realm: str, message_id: str) -> OpenNotification | None:
        """The notification, its device and its session, in one read (answered or not)."""
        ...

    async def commit(self, transition: Transition) -> bool:
        """Apply the transition if its session is still pending (before its deadline, unless
        `before_deadline` is False) and, with a `message_id`, that notification still open:
        status, detail, updated time, the notification's answer time, the audit entry, the
        outbox rows and the cross-process announcement, atomically. False, with nothing
        written, if another writer got there first."""
        ...

    async def record_failure(self, session_id: str, now_ms: int) -> PushSession | None:
        """Count a wrong answer on a session still pending before its deadline, atomically,
        and announce the change to other processes; the session after it, None if it was no
        longer pending."""
        ...

    async def uncount_notification(self, session_id: str) -> int | None:
        """One notification fewer in the session's `notificationCount` (never below 0): its
        push failed for good (delivery/model.py states the rule). The count left; None if
        there was none to take."""
        ...

    async def lock_idempotency_key(self, realm: str, key: str) -> None:
        """Within a transaction: hold the key's lock until it ends (taken before the user's),
        so that creates reusing one key for different users are one at a time too."""
        ...

    async def lock_user(self, realm: str, username: str) -> None:
        """Within a transaction: hold the user's creation lock until it ends, so that limits
        read and the session written are one step across processes."""
        ...

    async def user_limits(self, realm: str, username: str, since_ms: int, limit: int) -> UserLimits:
        """What the user's limits look at, in one read (a bounded one: the create path runs it)."""
        ...

    async def find_idempotency_key(self, realm: str, key: str) -> tuple[str, str, int] | None:
        """(request hash, session id, created ms) of a create made with this key, or None."""
        ...

    async def add_idempotency_key(
        self, realm: str, key: str, request_hash: str, session_id: str, now_ms: int
    ) -> None:
        """Remember the key, replacing a forgotten (older than 24 h) use of it."""
        ...

    async def pending_for_device(
        self, realm: str, mechanism_uid: str, now_ms: int, limit: int
    ) -> DevicePending | None:
        """In one read; None if the realm has no such device."""
        ...

    async def expire_due(
        self, now_ms: int, limit: int, expire: Callable[[PushSession], Transition]
    ) -> Sequence[Transition]:
        """Expire up to `limit` pending sessions past their deadline, oldest deadline first,
        committing for each the transition `expire` makes of it (status, audit, outbox rows,
        announcement) in one transaction; the transitions committed."""
        ...
