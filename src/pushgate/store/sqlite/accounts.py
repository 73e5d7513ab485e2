"""Realms, users and API keys on SQLite (`accounts/ports.py`)."""

from __future__ import annotations

from pushgate.accounts.model import ApiKey, Realm, RealmPolicy, User
from pushgate.store import rows
from pushgate.store import schema as t
from pushgate.store.sqlite.columns import Insert, Select, returning
from pushgate.store.sqlite.connection import Db


class SqliteAccounts:
    def __init__(self, db: Db) -> None:
        self._db = db

    # ON CONFLICT DO NOTHING covers uniqueness only: a missing realm still fails loudly.
    _ADD_REALM = Insert(t.realms, suffix="ON CONFLICT DO NOTHING")

    async def add_realm(self, realm: Realm) -> bool:
        params = self._ADD_REALM.params(rows.realm_values(realm))
        return await self._db.write(lambda c: c.execute(self._ADD_REALM.sql, params).rowcount == 1)

    _SET_REALM_POLICY = "UPDATE realms SET settings = ? WHERE name = ?"

    async def set_realm_policy(self, name: str, policy: RealmPolicy) -> bool:
        params = (rows.realm_values(Realm(name, 0, policy))["settings"], name)
        return await self._db.write(
            lambda c: c.execute(self._SET_REALM_POLICY, params).rowcount == 1
        )

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

    # SET expressions read the row as it was: `failure_count + 1` is the new count everywhere.
    _RECORD_FAILURE = Select(
        "UPDATE users SET failure_count = failure_count + 1, locked_ms = CASE"  # noqa: S608 - schema names
        " WHEN locked_ms IS NULL AND failure_count + 1 >= ? THEN ? ELSE locked_ms END"
        f" WHERE id = ? {returning(t.users)}",
        u=t.users,
    )

    async def record_failure(self, user_id: str, now_ms: int, lock_after: int) -> User | None:
        query = self._RECORD_FAILURE
        found = await self._db.write(
            lambda c: c.execute(query.sql, (lock_after, now_ms, user_id)).fetchall()
        )
        return rows.user(query.record(found[0])) if found else None

    _RESET_FAILURES = "UPDATE users SET failure_count = 0 WHERE id = ? AND failure_count <> 0"

    async def reset_failures(self, user_id: str) -> None:
        await self._db.write(lambda c: c.execute(self._RESET_FAILURES, (user_id,)))

    _UNLOCK = (
        "UPDATE users SET failure_count = 0, locked_ms = NULL WHERE realm = ? AND username = ?"
    )

    async def unlock(self, realm: str, username: str) -> bool:
        return await self._db.write(
            lambda c: c.execute(self._UNLOCK, (realm, username)).rowcount == 1
        )

    _ADD_API_KEY = Insert(t.api_keys)

    async def add_api_key(self, key: ApiKey) -> None:
        params = self._ADD_API_KEY.params(rows.api_key_values(key))
        await self._db.write(lambda c: c.execute(self._ADD_API_KEY.sql, params))

    _FIND_API_KEY = Select("SELECT {k} FROM api_keys k WHERE k.key_hash = ?", k=t.api_keys)

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        found = await self._db.fetch(self._FIND_API_KEY.sql, (key_hash,))
        return rows.api_key(self._FIND_API_KEY.record(found[0])) if found else None
