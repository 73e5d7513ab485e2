"""Realms, users and API keys on PostgreSQL (`accounts/ports.py`)."""

from __future__ import annotations

from pushgate.accounts.model import ApiKey, Realm, RealmPolicy, User
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
SET_REALM_POLICY = "UPDATE realms SET settings = $2 WHERE name = $1"
# SET expressions read the row as it was: `failure_count + 1` is the new count everywhere.
RECORD_FAILURE = (
    "UPDATE users SET failure_count = failure_count + 1, locked_ms = CASE"
    " WHEN locked_ms IS NULL AND failure_count + 1 >= $3 THEN $2 ELSE locked_ms END"
    " WHERE id = $1 RETURNING *"
)
RESET_FAILURES = "UPDATE users SET failure_count = 0 WHERE id = $1 AND failure_count <> 0"
UNLOCK = "UPDATE users SET failure_count = 0, locked_ms = NULL WHERE realm = $1 AND username = $2"


class PostgresAccounts(Accounts):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def add_realm(self, realm: Realm) -> bool:
        return updated_one(
            await self._db.execute(ADD_REALM, *args(t.realms, rows.realm_values(realm)))
        )

    async def set_realm_policy(self, name: str, policy: RealmPolicy) -> bool:
        settings = rows.realm_values(Realm(name, 0, policy))["settings"]
        return updated_one(await self._db.execute(SET_REALM_POLICY, name, settings))

    async def get_realm(self, name: str) -> Realm | None:
        row = await self._db.fetchrow(GET_REALM, name)
        return rows.realm(row) if row else None

    async def add_user(self, user: User) -> bool:
        status = await self._db.execute(ADD_USER, *args(t.users, rows.user_values(user)))
        return updated_one(status)

    async def get_user(self, realm: str, username: str) -> User | None:
        row = await self._db.fetchrow(GET_USER, realm, username)
        return rows.user(row) if row else None

    async def record_failure(self, user_id: str, now_ms: int, lock_after: int) -> User | None:
        row = await self._db.fetchrow(RECORD_FAILURE, user_id, now_ms, lock_after)
        return rows.user(row) if row else None

    async def reset_failures(self, user_id: str) -> None:
        await self._db.execute(RESET_FAILURES, user_id)

    async def unlock(self, realm: str, username: str) -> bool:
        return updated_one(await self._db.execute(UNLOCK, realm, username))

    async def add_api_key(self, key: ApiKey) -> None:
        await self._db.execute(ADD_API_KEY, *args(t.api_keys, rows.api_key_values(key)))

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = await self._db.fetchrow(FIND_API_KEY, key_hash)
        return rows.api_key(row) if row else None
