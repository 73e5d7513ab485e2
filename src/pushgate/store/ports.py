"""The store port: what services need from persistence (DESIGN.md layer 2).

A service opens one `transaction()` per use case and calls the methods of the returned
`Transaction`; nothing is visible to others until the block exits without an exception, and an
exception rolls everything back.

`autocommit()` gives the same methods without BEGIN/COMMIT: two round trips fewer, for use
cases that read, or that write through one of the methods documented as atomic
(`add_session`, `record_answer`). Each call then commits on its own, on PostgreSQL as a single
statement. (READ COMMITTED gives a transaction of reads no common snapshot anyway.)

The `finish_*`, `answer_*`, `record_*` and `complete_*` methods are compare-and-set updates:
they return False when another writer got there first. A session's
terminal transition is announced to the other processes when (and only if) it commits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from pushgate.accounts.model import ApiKey, Realm, User
from pushgate.devices.model import Device, PendingRegistration
from pushgate.protocol.device_messages import DeviceDetails
from pushgate.sessions.model import Notification, PushSession, SessionStatus

EXPIRED_EVENT = "session.expired"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    realm: str
    event: str
    subject: str
    data: Mapping[str, object]
    at_ms: int


@dataclass(frozen=True, slots=True)
class OpenNotification:
    """A notification with what answering it needs: its device and its session."""

    notification: Notification
    device: Device
    session: PushSession


class Transaction(Protocol):
    # realms, users, keys
    async def add_realm(self, realm: Realm) -> bool: ...
    async def get_realm(self, name: str) -> Realm | None: ...
    async def add_user(self, user: User) -> bool: ...
    async def get_user(self, realm: str, username: str) -> User | None: ...
    async def add_api_key(self, key: ApiKey) -> None: ...
    async def find_api_key(self, key_hash: str) -> ApiKey | None: ...

    # registration and devices
    async def add_registration(self, registration: PendingRegistration) -> None: ...
    async def get_registration(self, realm: str, message_id: str) -> PendingRegistration | None: ...
    async def complete_registration(self, message_id: str, now_ms: int) -> bool: ...
    async def add_device(self, device: Device) -> bool: ...
    async def get_device(self, realm: str, mechanism_uid: str) -> tuple[Device, User] | None: ...
    async def active_devices(self, user_id: str) -> Sequence[Device]: ...
    async def user_and_devices(
        self, realm: str, username: str
    ) -> tuple[User | None, Sequence[Device]]:
        """The user and their active devices, oldest first, in one read."""
        ...

    async def update_device(self, device_id: str, details: DeviceDetails, now_ms: int) -> None: ...
    async def consume_message(self, digest: str, realm: str, now_ms: int) -> bool: ...

    # sessions and notifications
    async def add_session(
        self,
        session: PushSession,
        notifications: Sequence[Notification],
        audit: AuditEntry,
    ) -> None:
        """Insert the session, its notifications and its audit entry, atomically."""
        ...

    async def get_session(self, realm: str, session_id: str) -> PushSession | None: ...
    async def finish_session(
        self,
        session_id: str,
        status: SessionStatus,
        detail: str | None,
        now_ms: int,
        *,
        before_deadline: bool,
    ) -> bool: ...
    async def get_open_notification(
        self, realm: str, message_id: str
    ) -> OpenNotification | None: ...
    async def answer_notification(self, message_id: str, now_ms: int) -> bool: ...
    async def record_answer(
        self,
        message_id: str,
        session_id: str,
        status: SessionStatus,
        detail: str | None,
        now_ms: int,
        audit: AuditEntry,
    ) -> bool:
        """Finish the pending session before its deadline, mark the notification answered and
        write the audit entry, atomically: all of it, or nothing and False."""
        ...

    async def device_and_pending(
        self, realm: str, mechanism_uid: str, now_ms: int, limit: int
    ) -> tuple[Device, User, Sequence[tuple[Notification, PushSession]]] | None:
        """A device, its user and its open notifications of live sessions, in one read."""
        ...

    async def expire_due(self, now_ms: int, limit: int) -> Sequence[tuple[str, str]]:
        """Expire up to `limit` pending sessions past their deadline, oldest first, writing an
        `EXPIRED_EVENT` audit entry for each; their (id, realm)."""
        ...

    async def audit(
        self, realm: str, event: str, subject: str, data: Mapping[str, object], now_ms: int
    ) -> None: ...


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...
    def autocommit(self) -> AbstractAsyncContextManager[Transaction]: ...
    async def aclose(self) -> None: ...

    async def watch_finished(self, publish: Callable[[str], None]) -> None:
        """Run until cancelled, publishing the ids of sessions finished by other processes."""
        ...
