"""What realms, users and API keys need from persistence (DESIGN.md layer 2)."""

from __future__ import annotations

from typing import Protocol

from pushgate.accounts.model import ApiKey, Realm, User


class Accounts(Protocol):
    async def add_realm(self, realm: Realm) -> bool:
        """False if it exists."""
        ...

    async def get_realm(self, name: str) -> Realm | None: ...
    async def add_user(self, user: User) -> bool:
        """False if the realm has a user of that name."""
        ...

    async def get_user(self, realm: str, username: str) -> User | None: ...
    async def add_api_key(self, key: ApiKey) -> None: ...
    async def find_api_key(self, key_hash: str) -> ApiKey | None: ...
