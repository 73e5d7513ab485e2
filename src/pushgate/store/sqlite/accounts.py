"""Realms, users and API keys on SQLite (`accounts/ports.py`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pushgate.accounts.model import (
    LAST_USED_EVERY_MS,
    ApiKey,
    Realm,
    RealmContents,
    RealmPolicy,
    User,
    UserFacts,
)
from pushgate.admin.model import AdminKey
from pushgate.devices.model import DeviceStatus
from pushgate.sessions.model import SessionStatus
from pushgate.store import admin_rows, rows
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

    # Administration (issue 10) -----------------------------------------------------------------

    _LIST_REALMS = Select("SELECT {r} FROM realms r ORDER BY r.name", r=t.realms)

    async def list_realms(self) -> Sequence[Realm]:
        found = await self._db.fetch(self._LIST_REALMS.sql)
        return [rows.realm(self._LIST_REALMS.record(r)) for r in found]

    _REALM_CONTENTS = (
        "SELECT (SELECT count(*) FROM users WHERE realm = ?1),"
        " (SELECT count(*) FROM api_keys WHERE realm = ?1 AND revoked_ms IS NULL),"
        " (SELECT count(*) FROM webhooks WHERE realm = ?1),"
        " (SELECT count(*) FROM journey_trees WHERE realm = ?1)"
    )

    async def realm_contents(self, name: str) -> RealmContents:
        [(users, keys, webhooks, journeys)] = await self._db.fetch(self._REALM_CONTENTS, (name,))
        return RealmContents(users, keys, webhooks, journeys)

    # Children first: the foreign keys are checked statement by statement.
    _REMOVE_REALM = (
        "DELETE FROM idempotency_keys WHERE realm = ?",
        "DELETE FROM notifications WHERE session_id IN (SELECT id FROM sessions WHERE realm = ?)",
        "DELETE FROM sessions WHERE realm = ?",
        "DELETE FROM api_keys WHERE realm = ?",
        "DELETE FROM consumed_messages WHERE realm = ?",
    )

    async def remove_realm(self, name: str) -> bool:
        def work(c: sqlite3.Connection) -> bool:
            for statement in self._REMOVE_REALM:
                c.execute(statement, (name,))
            return c.execute("DELETE FROM realms WHERE name = ?", (name,)).rowcount == 1

        return await self._db.write(work)

    _LIST_USERS = Select(
        "SELECT {u} FROM users u WHERE u.realm = ? AND (? IS NULL OR u.username > ?)"
        " ORDER BY u.username LIMIT ?",
        u=t.users,
    )

    async def list_users(self, realm: str, after: str | None, limit: int) -> Sequence[User]:
        found = await self._db.fetch(self._LIST_USERS.sql, (realm, after, after, limit))
        return [rows.user(self._LIST_USERS.record(r)) for r in found]

    _USER_FACTS = (
        "SELECT (SELECT count(*) FROM devices WHERE user_id = ?1 AND status <> ?4),"
        " (SELECT count(*) FROM sessions WHERE realm = ?2 AND username = ?3 AND status = ?5),"
        " (SELECT count(*) FROM recovery_codes WHERE user_id = ?1)"
    )
    _OPT_OUTS = "SELECT method FROM mfa_opt_outs WHERE user_id = ? ORDER BY method"

    async def user_facts(self, user: User) -> UserFacts:
        params = (user.id, user.realm, user.username, _REMOVED, _PENDING)
        [(devices, pending, codes)] = await self._db.fetch(self._USER_FACTS, params)
        methods = await self._db.fetch(self._OPT_OUTS, (user.id,))
        return UserFacts(devices, pending, codes, tuple(m for (m,) in methods))

    _REMOVE_USER = (
        "DELETE FROM notifications WHERE device_id IN (SELECT id FROM devices WHERE user_id = ?)",
        "DELETE FROM devices WHERE user_id = ?",
        "DELETE FROM registrations WHERE user_id = ?",
        "DELETE FROM inbox_messages WHERE user_id = ?",
        "DELETE FROM recovery_codes WHERE user_id = ?",
        "DELETE FROM mfa_opt_outs WHERE user_id = ?",
        "DELETE FROM login_sessions WHERE user_id = ?",  # no longer logged in anywhere
    )

    async def remove_user(self, user_id: str) -> bool:
        def work(c: sqlite3.Connection) -> bool:
            for statement in self._REMOVE_USER:
                c.execute(statement, (user_id,))
            return c.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount == 1

        return await self._db.write(work)

    async def clear_opt_outs(self, user_id: str) -> int:
        query = "DELETE FROM mfa_opt_outs WHERE user_id = ?"
        return await self._db.write(lambda c: c.execute(query, (user_id,)).rowcount)

    _LIST_API_KEYS = Select(
        "SELECT {k} FROM api_keys k WHERE ? IS NULL OR k.realm = ? ORDER BY k.created_ms, k.id",
        k=t.api_keys,
    )

    async def list_api_keys(self, realm: str | None) -> Sequence[ApiKey]:
        found = await self._db.fetch(self._LIST_API_KEYS.sql, (realm, realm))
        return [rows.api_key(self._LIST_API_KEYS.record(r)) for r in found]

    _GET_API_KEY = Select("SELECT {k} FROM api_keys k WHERE k.id = ?", k=t.api_keys)

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        found = await self._db.fetch(self._GET_API_KEY.sql, (key_id,))
        return rows.api_key(self._GET_API_KEY.record(found[0])) if found else None

    async def revoke_api_key(self, key_id: str, now_ms: int) -> bool:
        query = "UPDATE api_keys SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL"
        return await self._db.write(lambda c: c.execute(query, (now_ms, key_id)).rowcount == 1)

    async def touch_api_key(self, key_id: str, now_ms: int) -> None:
        await self._db.write(lambda c: c.execute(_touch("api_keys"), _touched(key_id, now_ms)))

    async def lock(self, user_id: str, now_ms: int) -> bool:
        query = "UPDATE users SET locked_ms = COALESCE(locked_ms, ?) WHERE id = ?"
        return await self._db.write(lambda c: c.execute(query, (now_ms, user_id)).rowcount == 1)

    _ADD_ADMIN_KEY = Insert(t.admin_keys)

    async def add_admin_key(self, key: AdminKey) -> None:
        params = self._ADD_ADMIN_KEY.params(admin_rows.admin_key_values(key))
        await self._db.write(lambda c: c.execute(self._ADD_ADMIN_KEY.sql, params))

    _FIND_ADMIN_KEY = Select("SELECT {k} FROM admin_keys k WHERE k.key_hash = ?", k=t.admin_keys)

    async def find_admin_key(self, key_hash: str) -> AdminKey | None:
        found = await self._db.fetch(self._FIND_ADMIN_KEY.sql, (key_hash,))
        return admin_rows.admin_key(self._FIND_ADMIN_KEY.record(found[0])) if found else None

    _LIST_ADMIN_KEYS = Select(
        "SELECT {k} FROM admin_keys k ORDER BY k.created_ms, k.id", k=t.admin_keys
    )

    async def list_admin_keys(self) -> Sequence[AdminKey]:
        found = await self._db.fetch(self._LIST_ADMIN_KEYS.sql)
        return [admin_rows.admin_key(self._LIST_ADMIN_KEYS.record(r)) for r in found]

    _GET_ADMIN_KEY = Select("SELECT {k} FROM admin_keys k WHERE k.id = ?", k=t.admin_keys)

    async def get_admin_key(self, key_id: str) -> AdminKey | None:
        found = await self._db.fetch(self._GET_ADMIN_KEY.sql, (key_id,))
        return admin_rows.admin_key(self._GET_ADMIN_KEY.record(found[0])) if found else None

    async def revoke_admin_key(self, key_id: str, now_ms: int) -> bool:
        query = "UPDATE admin_keys SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL"
        return await self._db.write(lambda c: c.execute(query, (now_ms, key_id)).rowcount == 1)

    async def touch_admin_key(self, key_id: str, now_ms: int) -> None:
        await self._db.write(lambda c: c.execute(_touch("admin_keys"), _touched(key_id, now_ms)))


_REMOVED = DeviceStatus.REMOVED.value
_PENDING = SessionStatus.PENDING.value


def _touch(table: str) -> str:
    return (
        f"UPDATE {table} SET last_used_ms = ?1 WHERE id = ?2"  # noqa: S608 - a schema name
        " AND (last_used_ms IS NULL OR last_used_ms <= ?1 - ?3)"
    )


def _touched(key_id: str, now_ms: int) -> tuple[object, ...]:
    return (now_ms, key_id, LAST_USED_EVERY_MS)
