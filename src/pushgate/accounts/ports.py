"""What realms, users and API keys need from persistence (DESIGN.md layer 2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pushgate.accounts.model import ApiKey, Realm, RealmContents, RealmPolicy, User, UserFacts
from pushgate.admin.model import AdminKey


class Accounts(Protocol):
    async def add_realm(self, realm: Realm) -> bool:
        """False if it exists."""
        ...

    async def get_realm(self, name: str) -> Realm | None: ...
    async def set_realm_policy(self, name: str, policy: RealmPolicy) -> bool:
        """False if there is no such realm."""
        ...

    async def add_user(self, user: User) -> bool:
        """False if the realm has a user of that name."""
        ...

    async def get_user(self, realm: str, username: str) -> User | None: ...
    async def record_failure(self, user_id: str, now_ms: int, lock_after: int) -> User | None:
        """Count one more consecutive failure, atomically; at `lock_after` the user is locked
        (`locked_ms` = now, kept if already locked). The user after it; None if gone."""
        ...

    async def reset_failures(self, user_id: str) -> None: ...
    async def unlock(self, realm: str, username: str) -> bool:
        """Clear the lock and the failure count; False if there is no such user."""
        ...

    async def add_api_key(self, key: ApiKey) -> None: ...
    async def find_api_key(self, key_hash: str) -> ApiKey | None: ...

    # Administration (issue 10) -----------------------------------------------------------------
    async def list_realms(self) -> Sequence[Realm]:
        """By name."""
        ...

    async def realm_contents(self, name: str) -> RealmContents: ...
    async def remove_realm(self, name: str) -> bool:
        """Delete an empty realm (see `realm_contents`) with what it still holds: revoked API
        keys, sessions, idempotency keys. False if there is no such realm."""
        ...

    async def list_users(self, realm: str, after: str | None, limit: int) -> Sequence[User]:
        """By username, those after `after`."""
        ...

    async def user_facts(self, user: User) -> UserFacts: ...
    async def remove_user(self, user_id: str) -> bool:
        """Delete the user with its devices (and their notifications), registrations, inbox
        messages, recovery codes, opt-outs and login sessions; its push sessions stay.
        False if gone already."""
        ...

    async def clear_opt_outs(self, user_id: str) -> int:
        """Forget the user's MFA opt-outs; how many there were."""
        ...

    async def list_api_keys(self, realm: str | None) -> Sequence[ApiKey]:
        """Oldest first; every realm's for None."""
        ...

    async def get_api_key(self, key_id: str) -> ApiKey | None: ...
    async def revoke_api_key(self, key_id: str, now_ms: int) -> bool:
        """Compare-and-set: False if there is no such key or it was revoked already."""
        ...

    async def touch_api_key(self, key_id: str, now_ms: int) -> None:
        """Record a use, unless one was recorded less than LAST_USED_EVERY_MS ago."""
        ...

    async def lock(self, user_id: str, now_ms: int) -> bool:
        """Lock the user (`locked_ms` = now, kept if locked already); False if gone."""
        ...

    async def add_admin_key(self, key: AdminKey) -> None: ...
    async def find_admin_key(self, key_hash: str) -> AdminKey | None: ...
    async def list_admin_keys(self) -> Sequence[AdminKey]:
        """Oldest first."""
        ...

    async def get_admin_key(self, key_id: str) -> AdminKey | None: ...
    async def revoke_admin_key(self, key_id: str, now_ms: int) -> bool:
        """Compare-and-set, as `revoke_api_key`."""
        ...

    async def touch_admin_key(self, key_id: str, now_ms: int) -> None:
        """As `touch_api_key`."""
        ...
