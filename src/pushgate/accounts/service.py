"""Use cases for realms, users and relying-party API keys."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from argon2 import PasswordHasher

from pushgate.accounts.model import (
    LAST_USED_EVERY_MS,
    ApiKey,
    Realm,
    RealmPolicy,
    User,
    check_label,
    check_username,
    hash_api_key,
    new_api_key,
    normalize_realm,
    realm_policy,
)
from pushgate.audit.model import AuditEntry
from pushgate.clock import Clock
from pushgate.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from pushgate.store.ports import Store, UnitOfWork

_MAX_API_KEY_CHARS = 256
_MAX_CACHED_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    id: str
    realm: str
    key: str  # shown once, never stored
    label: str | None = None


async def require_realm(tx: UnitOfWork, name: str) -> str:
    realm = normalize_realm(name)
    if await tx.accounts.get_realm(realm) is None:
        raise NotFound(f"realm {realm} does not exist")
    return realm


def _is_unicode(text: str) -> bool:
    """False for lone surrogates: what a command line makes of bytes that are not UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class AccountService:
    def __init__(self, store: Store, clock: Clock, *, api_key_cache_seconds: float = 0) -> None:
        self._store = store
        self._clock = clock
        self._hasher = PasswordHasher()
        # Known keys are remembered briefly: a relying party's every request would otherwise
        # cost a database round trip. Unknown keys are never cached (no memory to fill).
        self._key_cache_ms = int(api_key_cache_seconds * 1000)
        self._known_keys: dict[str, tuple[str, str, int]] = {}  # hash: realm, id, until
        # Realm policies are read on every create: remembered as long as keys are.
        self._policies: dict[str, tuple[RealmPolicy, int]] = {}

    async def create_realm(self, name: str) -> Realm:
        realm = Realm(normalize_realm(name), self._clock.now_ms())
        async with self._store.transaction() as tx:
            if not await tx.accounts.add_realm(realm):
                raise Conflict(f"realm {realm.name} already exists")
            await tx.audit.append(
                AuditEntry(realm.name, "realm.created", realm.name, realm.created_ms)
            )
        return realm

    async def create_user(self, realm_name: str, username: str, password: str | None) -> User:
        if password is not None and not _is_unicode(password):
            raise InvalidRequest("a password must be valid Unicode text")
        password_hash = self._hasher.hash(password) if password is not None else None
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            realm = await require_realm(tx, realm_name)
            user = User(str(uuid.uuid4()), realm, check_username(username), password_hash, now)
            if not await tx.accounts.add_user(user):
                raise Conflict(f"user {username!r} already exists in realm {realm}")
            await tx.audit.append(
                AuditEntry(realm, "user.created", user.id, now, {"username": username})
            )
        return user

    async def realm_policy(self, realm: str) -> RealmPolicy:
        """The realm's limits and defaults, at most `api_key_cache_seconds` old."""
        now = self._clock.now_ms()
        cached = self._policies.get(realm)
        if cached is not None and cached[1] > now:
            return cached[0]
        async with self._store.autocommit() as reader:
            found = await reader.accounts.get_realm(realm)
        policy = found.policy if found else RealmPolicy()
        if self._key_cache_ms > 0 and found is not None:
            self._policies[realm] = (policy, now + self._key_cache_ms)
        return policy

    async def set_realm_policy(
        self, realm_name: str, changes: Mapping[str, object], *, actor: str = "cli"
    ) -> RealmPolicy:
        """Change some of the realm's settings (camelCase names, as `RealmPolicy.as_json`)."""
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            realm = normalize_realm(realm_name)
            found = await tx.accounts.get_realm(realm)
            if found is None:
                raise NotFound(f"realm {realm} does not exist")
            policy = realm_policy({**found.policy.as_json(), **changes})
            await tx.accounts.set_realm_policy(realm, policy)
            await tx.audit.append(
                AuditEntry(realm, "realm.updated", realm, now, {"settings": dict(changes)}, actor)
            )
        self._policies.pop(realm, None)
        return policy

    async def unlock_user(self, realm_name: str, username: str, *, actor: str = "cli") -> None:
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            realm = await require_realm(tx, realm_name)
            if not await tx.accounts.unlock(realm, username):
                raise NotFound(f"no user {username!r} in realm {realm}")
            await tx.audit.append(
                AuditEntry(realm, "user.unlocked", username, now, {"username": username}, actor)
            )

    async def create_api_key(
        self, realm_name: str, *, label: str | None = None, actor: str = "cli"
    ) -> IssuedApiKey:
        check_label(label)
        key = new_api_key()
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            realm = await require_realm(tx, realm_name)
            record = ApiKey(str(uuid.uuid4()), realm, hash_api_key(key), now, label=label)
            await tx.accounts.add_api_key(record)
            entry = AuditEntry(realm, "apikey.created", record.id, now, {"label": label}, actor)
            await tx.audit.append(entry)
        return IssuedApiKey(record.id, realm, key, label)

    async def realm_for_api_key(self, key: str | None) -> str:
        """The realm a relying party's key belongs to; Unauthorized for anything else."""
        return (await self.api_key_holder(key))[0]

    async def api_key_holder(self, key: str | None) -> tuple[str, str]:
        """The realm and the id of a relying party's key (the id names it in the audit
        trail); Unauthorized for anything else."""
        if not key or len(key) > _MAX_API_KEY_CHARS:
            raise Unauthorized("a valid X-API-Key header is required")
        key_hash = hash_api_key(key)
        now = self._clock.now_ms()
        cached = self._known_keys.get(key_hash)
        if cached is not None and cached[2] > now:
            return cached[0], cached[1]
        async with self._store.autocommit() as reader:
            record = await reader.accounts.find_api_key(key_hash)
        if record is None or record.revoked_ms is not None:
            raise Unauthorized("a valid X-API-Key header is required", reason="unknown api key")
        if record.last_used_ms is None or now - record.last_used_ms >= LAST_USED_EVERY_MS:
            # At most one write per key per minute (the cache spares most reads, too).
            async with self._store.autocommit() as writer:
                await writer.accounts.touch_api_key(record.id, now)
        if self._key_cache_ms > 0:
            if len(self._known_keys) >= _MAX_CACHED_KEYS:
                self._known_keys.clear()
            self._known_keys[key_hash] = (record.realm, record.id, now + self._key_cache_ms)
        return record.realm, record.id
