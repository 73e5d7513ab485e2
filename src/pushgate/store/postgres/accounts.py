"""Realms, users and API keys on PostgreSQL (`accounts/ports.py`)."""

from __future__ import annotations

from pushgate.accounts.model import ApiKey, Realm, User
from pushgate.accounts.ports import Accounts
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.postgres.sql import Db, args, insert, updated_one

ADD_REALM = insert(t.realms, ignore_duplicate=True)
GET_REALM = "SELECT * FROM realms WHERE name = $1"
ADD_USER = insert(t.users, ignore_duplicate=True)
GET_USER = "SELECT * FROM users WHERE realm = $1 AND username = $2"
ADD_API_KEY = insert(t.api_keys)
FIND_API_KEY = "SELECT * FROM api_keys WHERE key_hash = $1"


class PostgresAccounts(Accounts):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def add_realm(self, realm: Realm) -> bool:
        return updated_one(await self._db.execute(ADD_REALM, realm.name, realm.created_ms))

    async def get_realm(self, name: str) -> Realm | None:
        row = await self._db.fetchrow(GET_REALM, name)
        return rows.realm(row) if row else None

    async def add_user(self, user: User) -> bool:
        status = await self._db.execute(ADD_USER, *args(t.users, rows.user_values(user)))
        return updated_one(status)

    async def get_user(self, realm: str, username: str) -> User | None:
        row = await self._db.fetchrow(GET_USER, realm, username)
        return rows.user(row) if row else None

    async def add_api_key(self, key: ApiKey) -> None:
        await self._db.execute(ADD_API_KEY, *args(t.api_keys, rows.api_key_values(key)))

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = await self._db.fetchrow(FIND_API_KEY, key_hash)
        return rows.api_key(row) if row else None
