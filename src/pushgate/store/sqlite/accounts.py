"""Realms, users and API keys on SQLite (`accounts/ports.py`)."""

from __future__ import annotations

from pushgate.accounts.model import ApiKey, Realm, User
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.sqlite.columns import Insert, Select
from pushgate.store.sqlite.connection import Db


class SqliteAccounts:
    def __init__(self, db: Db) -> None:
        self._db = db

    # ON CONFLICT DO NOTHING covers uniqueness only: a missing realm still fails loudly.
    _ADD_REALM = "INSERT INTO realms (name, created_ms) VALUES (?, ?) ON CONFLICT DO NOTHING"

    async def add_realm(self, realm: Realm) -> bool:
        params = (realm.name, realm.created_ms)
        return await self._db.write(lambda c: c.execute(self._ADD_REALM, params).rowcount == 1)

    _GET_REALM = Select("SELECT {r} FROM realms r WHERE r.name = ?", r=t.realms)

    async def get_realm(self, name: str) -> Realm | None:
        found = await self._db.fetch(self._GET_REALM.sql, (name,))
        return rows.realm(self._GET_REALM.record(found[0])) if found else None

    _ADD_USER = Insert(t.users, suffix="ON CONFLICT DO NOTHING")

    async def add_user(self, user: User) -> bool:
        params = self._ADD_USER.params(rows.user_values(user))
        return await self._db.write(lambda c: c.execute(self._ADD_USER.sql, params).rowcount == 1)

    _GET_USER = Select("SELECT {u} FROM users u WHERE u.realm = ? AND u.username = ?", u=t.users)

    async def get_user(self, realm: str, username: str) -> User | None:
        found = await self._db.fetch(self._GET_USER.sql, (realm, username))
        return rows.user(self._GET_USER.record(found[0])) if found else None

    _ADD_API_KEY = Insert(t.api_keys)

    async def add_api_key(self, key: ApiKey) -> None:
        params = self._ADD_API_KEY.params(rows.api_key_values(key))
        await self._db.write(lambda c: c.execute(self._ADD_API_KEY.sql, params))

    _FIND_API_KEY = Select("SELECT {k} FROM api_keys k WHERE k.key_hash = ?", k=t.api_keys)

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        found = await self._db.fetch(self._FIND_API_KEY.sql, (key_hash,))
        return rows.api_key(self._FIND_API_KEY.record(found[0])) if found else None
