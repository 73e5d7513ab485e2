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
from pushgate.outbox.model import OutboxMessage
from pushgate.sessions.machine import Transition
from pushgate.sessions.model import Notification, PushSession


@dataclass(frozen=True, slots=True)
class OpenNotification:
    """A notification with what answering it needs: its device and its session."""

    notification: Notification
    device: Device
    session: PushSession


@dataclass(frozen=True, slots=True)
class DevicePending:
    """A device, its user and its open notifications of live sessions, oldest first."""

    device: Device
    user: User
    pending: Sequence[tuple[Notification, PushSession]]


class Sessions(Protocol):
    async def add(
        self,
        session: PushSession,
        notifications: Sequence[Notification],
        audit: AuditEntry,
        outbox: Sequence[OutboxMessage] = (),
    ) -> None:
        """Insert the session, its notifications, its audit entry and outbox rows, atomically."""
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
