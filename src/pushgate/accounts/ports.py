"""What realms, users and API keys need from persistence (DESIGN.md layer 2)."""

from __future__ import annotations

from typing import Protocol

from pushgate.accounts.model import ApiKey, Realm, RealmPolicy, User


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
