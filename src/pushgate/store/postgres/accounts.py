"""Realms, users and API keys on PostgreSQL (`accounts/ports.py`)."""

from __future__ import annotations

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
from pushgate.accounts.ports import Accounts
from pushgate.admin.model import AdminKey
from pushgate.devices.model import DeviceStatus
from pushgate.sessions.model import SessionStatus
from pushgate.store import admin_rows, rows
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

# Administration (issue 10).
LIST_REALMS = "SELECT * FROM realms ORDER BY name"
REALM_CONTENTS = (
    "SELECT (SELECT count(*) FROM users WHERE realm = $1),"
    " (SELECT count(*) FROM api_keys WHERE realm = $1 AND revoked_ms IS NULL),"
    " (SELECT count(*) FROM webhooks WHERE realm = $1),"
    " (SELECT count(*) FROM journey_trees WHERE realm = $1)"
)
# Children first, in one statement: one round trip, and all of it or nothing.
REMOVE_REALM = (
    "WITH i AS (DELETE FROM idempotency_keys WHERE realm = $1),"
    " n AS (DELETE FROM notifications WHERE session_id IN"
    " (SELECT id FROM sessions WHERE realm = $1)),"
    " c AS (DELETE FROM consumed_messages WHERE realm = $1)"
    " SELECT 1"
)
REMOVE_REALM_ROWS = (
    "DELETE FROM sessions WHERE realm = $1",
    "DELETE FROM api_keys WHERE realm = $1",
)
LIST_USERS = (
    "SELECT * FROM users WHERE realm = $1 AND ($2::text IS NULL OR username > $2::text)"
    " ORDER BY username LIMIT $3"
)
USER_FACTS = (
    "SELECT (SELECT count(*) FROM devices WHERE user_id = $1 AND status <> $4),"
    " (SELECT count(*) FROM sessions WHERE realm = $2 AND username = $3 AND status = $5),"
    " (SELECT count(*) FROM recovery_codes WHERE user_id = $1),"
    " ARRAY(SELECT method FROM mfa_opt_outs WHERE user_id = $1 ORDER BY method)"
)
REMOVE_USER_ROWS = (
    "DELETE FROM notifications WHERE device_id IN (SELECT id FROM devices WHERE user_id = $1)",
    "DELETE FROM devices WHERE user_id = $1",
    "DELETE FROM registrations WHERE user_id = $1",
    "DELETE FROM inbox_messages WHERE user_id = $1",
    "DELETE FROM recovery_codes WHERE user_id = $1",
    "DELETE FROM mfa_opt_outs WHERE user_id = $1",
    "DELETE FROM login_sessions WHERE user_id = $1",  # no longer logged in anywhere
)
REMOVE_USER = "DELETE FROM users WHERE id = $1"
CLEAR_OPT_OUTS = "DELETE FROM mfa_opt_outs WHERE user_id = $1"
LIST_API_KEYS = (
    "SELECT * FROM api_keys WHERE $1::text IS NULL OR realm = $1::text ORDER BY created_ms, id"
)
GET_API_KEY = "SELECT * FROM api_keys WHERE id = $1"
REVOKE_API_KEY = "UPDATE api_keys SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL"
TOUCH = (
    "UPDATE {table} SET last_used_ms = $2 WHERE id = $1"
    " AND (last_used_ms IS NULL OR last_used_ms <= $2 - $3::bigint)"
)
LOCK = "UPDATE users SET locked_ms = COALESCE(locked_ms, $2) WHERE id = $1"
ADD_ADMIN_KEY = insert(t.admin_keys)
FIND_ADMIN_KEY = "SELECT * FROM admin_keys WHERE key_hash = $1"
LIST_ADMIN_KEYS = "SELECT * FROM admin_keys ORDER BY created_ms, id"
GET_ADMIN_KEY = "SELECT * FROM admin_keys WHERE id = $1"
REVOKE_ADMIN_KEY = "UPDATE admin_keys SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL"


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

    # Administration (issue 10) -----------------------------------------------------------------

    async def list_realms(self) -> Sequence[Realm]:
        return [rows.realm(row) for row in await self._db.fetch(LIST_REALMS)]

    async def realm_contents(self, name: str) -> RealmContents:
        if self._db.conn.is_in_transaction():
            # Before a removal: a user, key, webhook or journey added meanwhile waits for
            # this transaction (its foreign key locks the realm's row) instead of slipping in
            # between the count and the delete.
            await self._db.execute("SELECT 1 FROM realms WHERE name = $1 FOR UPDATE", name)
        row = await self._db.fetchrow(REALM_CONTENTS, name)
        assert row is not None  # an aggregate always answers one row
        return RealmContents(row[0], row[1], row[2], row[3])

    async def remove_realm(self, name: str) -> bool:
        async with self._db.atomic():
            await self._db.execute(REMOVE_REALM, name)
            for statement in REMOVE_REALM_ROWS:
                await self._db.execute(statement, name)
            return updated_one(await self._db.execute("DELETE FROM realms WHERE name = $1", name))

    async def list_users(self, realm: str, after: str | None, limit: int) -> Sequence[User]:
        return [rows.user(row) for row in await self._db.fetch(LIST_USERS, realm, after, limit)]

    async def user_facts(self, user: User) -> UserFacts:
        row = await self._db.fetchrow(
            USER_FACTS, user.id, user.realm, user.username, _REMOVED, _PENDING
        )
        assert row is not None
        return UserFacts(row[0], row[1], row[2], tuple(row[3]))

    async def remove_user(self, user_id: str) -> bool:
        async with self._db.atomic():
            for statement in REMOVE_USER_ROWS:
                await self._db.execute(statement, user_id)
            return updated_one(await self._db.execute(REMOVE_USER, user_id))

    async def clear_opt_outs(self, user_id: str) -> int:
        status = await self._db.execute(CLEAR_OPT_OUTS, user_id)
        return int(status.rsplit(" ", 1)[1])

    async def list_api_keys(self, realm: str | None) -> Sequence[ApiKey]:
        return [rows.api_key(row) for row in await self._db.fetch(LIST_API_KEYS, realm)]

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        row = await self._db.fetchrow(GET_API_KEY, key_id)
        return rows.api_key(row) if row else None

    async def revoke_api_key(self, key_id: str, now_ms: int) -> bool:
        return updated_one(await self._db.execute(REVOKE_API_KEY, key_id, now_ms))

    async def touch_api_key(self, key_id: str, now_ms: int) -> None:
        await self._db.execute(_TOUCH_API_KEY, key_id, now_ms, LAST_USED_EVERY_MS)

    async def lock(self, user_id: str, now_ms: int) -> bool:
        return updated_one(await self._db.execute(LOCK, user_id, now_ms))

    async def add_admin_key(self, key: AdminKey) -> None:
        values = admin_rows.admin_key_values(key)
        await self._db.execute(ADD_ADMIN_KEY, *args(t.admin_keys, values))

    async def find_admin_key(self, key_hash: str) -> AdminKey | None:
        row = await self._db.fetchrow(FIND_ADMIN_KEY, key_hash)
        return admin_rows.admin_key(row) if row else None

    async def list_admin_keys(self) -> Sequence[AdminKey]:
        return [admin_rows.admin_key(row) for row in await self._db.fetch(LIST_ADMIN_KEYS)]

    async def get_admin_key(self, key_id: str) -> AdminKey | None:
        row = await self._db.fetchrow(GET_ADMIN_KEY, key_id)
        return admin_rows.admin_key(row) if row else None

    async def revoke_admin_key(self, key_id: str, now_ms: int) -> bool:
        return updated_one(await self._db.execute(REVOKE_ADMIN_KEY, key_id, now_ms))

    async def touch_admin_key(self, key_id: str, now_ms: int) -> None:
        await self._db.execute(_TOUCH_ADMIN_KEY, key_id, now_ms, LAST_USED_EVERY_MS)


_REMOVED = DeviceStatus.REMOVED.value
_PENDING = SessionStatus.PENDING.value
_TOUCH_API_KEY = TOUCH.format(table="api_keys")
_TOUCH_ADMIN_KEY = TOUCH.format(table="admin_keys")
