"""The operators' use cases (issue 10 "Administration"): realms, users, API keys and admin
keys, each change audited with who made it (`actor`: "cli", or "admin:<key id>").

Device changes are `DeviceService`'s (they must tell the app); webhooks and journeys are their
own services'. The CLI and the admin API `/admin/...` both call these.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pushgate.accounts.model import (
    LAST_USED_EVERY_MS,
    ROOT_REALM,
    ApiKey,
    Realm,
    RealmContents,
    User,
    UserFacts,
    check_label,
    check_username,
    normalize_realm,
)
from pushgate.accounts.service import require_realm
from pushgate.admin.model import (
    ADMIN_KEY_PREFIX,
    AdminKey,
    Scope,
    hash_admin_key,
    new_admin_key,
    parse_scopes,
)
from pushgate.audit import model as audit
from pushgate.audit.model import AuditEntry
from pushgate.changes import Follower, UserChange, UserEvent, follow
from pushgate.clock import Clock
from pushgate.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from pushgate.sessions.model import SessionStatus
from pushgate.store.ports import Store, UnitOfWork

CLI = audit.CLI
MAX_LIST = 1000
_MAX_KEY_CHARS = 256
_MAX_CACHED_KEYS = 1000
_BEARER = "bearer "
# Who is asked to cancel a locked user's pending sessions (SessionService.cancel).
CancelSession = Callable[[str, str], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class IssuedAdminKey:
    record: AdminKey
    key: str  # shown once, never stored


def admin_actor(key: AdminKey) -> str:
    return audit.admin_actor(key.id)


class AdminService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        key_cache_seconds: float = 0,
        followers: Sequence[Follower] = (),
        on_outbox: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._followers = tuple(followers)  # a lock's webhook `user.locked`
        self._on_outbox = on_outbox
        # As relying-party keys (AccountService): a revoked key stops working on every process
        # within this time; unknown keys are never cached.
        self._cache_ms = int(key_cache_seconds * 1000)
        self._known: dict[str, tuple[AdminKey, int]] = {}

    # Realms ---------------------------------------------------------------------------------

    async def list_realms(self) -> Sequence[Realm]:
        async with self._store.autocommit() as db:
            return await db.accounts.list_realms()

    async def show_realm(self, name: str) -> tuple[Realm, RealmContents]:
        async with self._store.autocommit() as db:
            realm = await _realm(db, name)
            return realm, await db.accounts.realm_contents(realm.name)

    async def remove_realm(self, name: str, *, actor: str = CLI) -> Realm:
        """Only an empty realm goes: no users, API keys, webhooks or imported journeys."""
        now = self._clock.now_ms()
        if normalize_realm(name) == ROOT_REALM:
            raise BadRequest("the root realm / cannot be removed")
        async with self._store.transaction() as tx:
            realm = await _realm(tx, name)
            blockers = (await tx.accounts.realm_contents(realm.name)).blockers()
            if blockers:
                raise Conflict(
                    f"realm {realm.name} is not empty ({', '.join(blockers)}): remove or revoke"
                    " them first"
                )
            if not await tx.accounts.remove_realm(realm.name):
                raise NotFound(f"realm {realm.name} does not exist")
            await tx.audit.append(
                AuditEntry(realm.name, "realm.removed", realm.name, now, actor=actor)
            )
        return realm

    # Users ----------------------------------------------------------------------------------

    async def list_users(
        self, realm_name: str, *, after: str | None = None, limit: int = 100
    ) -> Sequence[User]:
        limit = max(1, min(limit, MAX_LIST))
        async with self._store.autocommit() as db:
            realm = await require_realm(db, realm_name)
            return await db.accounts.list_users(realm, after, limit)

    async def show_user(self, realm_name: str, username: str) -> tuple[User, UserFacts]:
        async with self._store.autocommit() as db:
            user = await _user(db, realm_name, username)
            return user, await db.accounts.user_facts(user)

    async def lock_user(
        self, realm_name: str, username: str, cancel: CancelSession, *, actor: str = CLI
    ) -> list[str]:
        """Lock the user (no session reaches a locked user) and cancel its pending sessions
        (`cancel(realm, session_id)`, after the lock's commit); their ids."""
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            user = await _user(tx, realm_name, username)
            await tx.sessions.lock_user(user.realm, user.username)
            if not await tx.accounts.lock(user.id, now):
                raise NotFound(f"no user {username!r} in realm {user.realm}")
            limits = await tx.sessions.user_limits(user.realm, user.username, now, 1)
            pending = [s.id for s in limits.pending if s.status_at(now) is SessionStatus.PENDING]
            data = {"username": user.username}
            await tx.audit.append(AuditEntry(user.realm, "user.locked", user.id, now, data, actor))
            change = UserChange(UserEvent.LOCKED, user.realm, user.username, now)
            outbox = follow(change, self._followers)
            if outbox:
                await tx.outbox.add(outbox, now)
        if outbox:
            self._on_outbox()
        for session_id in pending:
            with contextlib.suppress(Conflict, NotFound):  # it ended meanwhile
                await cancel(user.realm, session_id)
        return pending

    async def remove_user(self, realm_name: str, username: str, *, actor: str = CLI) -> User:
        """The user and all it has (devices, registrations, inbox, recovery codes, opt-outs);
        refused while a session waits for the user's answer. Its sessions stay, for the
        record. The devices get no `mtoken.statusChange`: remove them first for that."""
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            user = await _user(tx, realm_name, username)
            await tx.sessions.lock_user(user.realm, user.username)  # no create meanwhile
            facts = await tx.accounts.user_facts(user)
            if facts.pending_sessions:
                raise Conflict(
                    f"user {username!r} has {facts.pending_sessions} pending session(s):"
                    " cancel them or let them end first"
                )
            if not await tx.accounts.remove_user(user.id):
                raise NotFound(f"no user {username!r} in realm {user.realm}")
            data = {"username": user.username, "devices": facts.devices}
            await tx.audit.append(AuditEntry(user.realm, "user.removed", user.id, now, data, actor))
        return user

    async def reset_opt_outs(self, realm_name: str, username: str, *, actor: str = CLI) -> int:
        """Forget the user's MFA opt-outs (journeys' Opt-out node): the journey asks again."""
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            user = await _user(tx, realm_name, username)
            cleared = await tx.accounts.clear_opt_outs(user.id)
            data = {"username": user.username, "cleared": cleared}
            entry = AuditEntry(user.realm, "user.opt_outs_reset", user.id, now, data, actor)
            await tx.audit.append(entry)
        return cleared

    # Relying-party API keys -------------------------------------------------------------------

    async def list_api_keys(self, realm_name: str | None = None) -> Sequence[ApiKey]:
        async with self._store.autocommit() as db:
            realm = await require_realm(db, realm_name) if realm_name is not None else None
            return await db.accounts.list_api_keys(realm)

    async def revoke_api_key(self, key_id: str, *, actor: str = CLI) -> ApiKey:
        """Every process refuses the key within PUSHGATE_API_KEY_CACHE_SECONDS. Revoking a
        revoked key changes nothing."""
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            found = await tx.accounts.get_api_key(key_id) if len(key_id) <= 64 else None
            if found is None:
                raise NotFound(f"no API key {key_id!r}")
            if found.revoked_ms is not None:
                return found
            await tx.accounts.revoke_api_key(found.id, now)
            data = {"label": found.label}
            entry = AuditEntry(found.realm, "apikey.revoked", found.id, now, data, actor)
            await tx.audit.append(entry)
        return ApiKey(
            found.id,
            found.realm,
            found.key_hash,
            found.created_ms,
            now,
            found.label,
            found.last_used_ms,
        )

    # Admin keys -----------------------------------------------------------------------------

    async def create_admin_key(
        self, scopes: Sequence[str], *, label: str | None = None, actor: str = CLI
    ) -> IssuedAdminKey:
        chosen = parse_scopes(scopes)
        check_label(label)
        key = new_admin_key()
        now = self._clock.now_ms()
        record = AdminKey(str(uuid.uuid4()), hash_admin_key(key), chosen, now, label)
        async with self._store.transaction() as tx:
            await tx.accounts.add_admin_key(record)
            data = {"scopes": sorted(chosen), "label": label}
            entry = AuditEntry(ROOT_REALM, "adminkey.created", record.id, now, data, actor)
            await tx.audit.append(entry)
        return IssuedAdminKey(record, key)

    async def list_admin_keys(self) -> Sequence[AdminKey]:
        async with self._store.autocommit() as db:
            return await db.accounts.list_admin_keys()

    async def revoke_admin_key(self, key_id: str, *, actor: str = CLI) -> AdminKey:
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            found = await tx.accounts.get_admin_key(key_id) if len(key_id) <= 64 else None
            if found is None:
                raise NotFound(f"no admin key {key_id!r}")
            if found.revoked_ms is not None:
                return found
            await tx.accounts.revoke_admin_key(found.id, now)
            data = {"label": found.label}
            entry = AuditEntry(ROOT_REALM, "adminkey.revoked", found.id, now, data, actor)
            await tx.audit.append(entry)
        self._known.clear()  # this process at once; the others within the cache time
        return AdminKey(found.id, found.key_hash, found.scopes, found.created_ms, found.label, now)

    async def authorize(self, authorization: str | None, scope: Scope) -> AdminKey:
        """The admin key of an `Authorization: Bearer` header if it holds `scope`:
        Unauthorized for a missing, unknown or revoked key, Forbidden for a missing scope."""
        key = await self._authenticate(authorization)
        if scope not in key.scopes:
            raise Forbidden(
                f"this admin key lacks the scope {scope.value}",
                reason=f"admin key {key.id} lacks {scope.value}",
            )
        return key

    async def _authenticate(self, authorization: str | None) -> AdminKey:
        refused = "a valid admin key is required (Authorization: Bearer pga_...)"
        if (
            not authorization
            or len(authorization) > _MAX_KEY_CHARS
            or not authorization[: len(_BEARER)].lower() == _BEARER
        ):
            raise Unauthorized(refused, reason="no bearer admin key")
        token = authorization[len(_BEARER) :].strip()
        if not token.startswith(ADMIN_KEY_PREFIX):
            raise Unauthorized(refused, reason="not an admin key")
        key_hash = hash_admin_key(token)
        now = self._clock.now_ms()
        cached = self._known.get(key_hash)
        if cached is not None and cached[1] > now:
            return cached[0]
        async with self._store.autocommit() as db:
            record = await db.accounts.find_admin_key(key_hash)
            if record is None or record.revoked_ms is not None:
                raise Unauthorized(refused, reason="unknown or revoked admin key")
            if record.last_used_ms is None or now - record.last_used_ms >= LAST_USED_EVERY_MS:
                await db.accounts.touch_admin_key(record.id, now)
        if self._cache_ms > 0:
            if len(self._known) >= _MAX_CACHED_KEYS:
                self._known.clear()
            self._known[key_hash] = (record, now + self._cache_ms)
        return record


async def _realm(db: UnitOfWork, name: str) -> Realm:
    realm = normalize_realm(name)
    found = await db.accounts.get_realm(realm)
    if found is None:
        raise NotFound(f"realm {realm} does not exist")
    return found


async def _user(db: UnitOfWork, realm_name: str, username: str) -> User:
    realm = await require_realm(db, realm_name)
    user = await db.accounts.get_user(realm, check_username(username))
    if user is None:
        raise NotFound(f"no user {username!r} in realm {realm}")
    return user
