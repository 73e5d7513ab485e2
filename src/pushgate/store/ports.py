"""The unit of work: the one store port services and faces see (DESIGN.md layer 2).

Each area owns its port beside its model (`accounts/ports.py`, `devices/ports.py`,
`sessions/ports.py`, `outbox/ports.py`, `audit/ports.py`); a unit of work exposes them all on
one connection: `tx.accounts`, `tx.devices`, `tx.sessions`, `tx.outbox`, `tx.audit`.

`transaction()` commits when its block exits without an exception and rolls everything back
otherwise. `autocommit()` runs each call on its own, without BEGIN/COMMIT: for reads, and for
the calls documented as atomic (`sessions.add`, `sessions.commit`).

Adapters raise `Unavailable` when the database cannot be reached (nothing was written) and
`SecretKeyMismatch` when a sealed secret does not open under the configured key.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from pushgate.accounts.ports import Accounts
from pushgate.audit.ports import AuditLog
from pushgate.devices.ports import Devices
from pushgate.inbox.ports import Inbox
from pushgate.journeys.ports import Journeys
from pushgate.logins.ports import Logins
from pushgate.outbox.ports import Outbox
from pushgate.retention.ports import Retention
from pushgate.rotation.ports import SealedSecrets
from pushgate.sessions.ports import Sessions
from pushgate.webhooks.ports import Webhooks


class UnitOfWork(Protocol):
    @property
    def accounts(self) -> Accounts: ...
    @property
    def devices(self) -> Devices: ...
    @property
    def sessions(self) -> Sessions: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def webhooks(self) -> Webhooks: ...
    @property
    def inbox(self) -> Inbox: ...
    @property
    def journeys(self) -> Journeys: ...
    @property
    def retention(self) -> Retention: ...
    @property
    def sealed(self) -> SealedSecrets: ...
    @property
    def logins(self) -> Logins: ...


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]: ...
    def autocommit(self) -> AbstractAsyncContextManager[UnitOfWork]: ...

    async def ping(self) -> None:
        """One trivial read; `Unavailable` if the database cannot be reached."""
        ...

    async def check_secret_key(self) -> None:
        """Open the newest sealed secret, if there is one: `SecretKeyMismatch` if the
        configured key is not the one the database's secrets were sealed with."""
        ...

    async def schema_revision(self) -> str | None:
        """The migration the database is at (None: never migrated), in one read;
        `Unavailable` if the database cannot be reached (the readiness check)."""
        ...

    async def watch_finished(self, publish: Callable[[str], None]) -> None:
        """Run until cancelled, publishing the ids of sessions finished by other processes
        (SQLite has no such channel: it only waits). Reconnects by itself after a loss."""
        ...

    async def aclose(self) -> None: ...
