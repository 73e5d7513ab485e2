"""Journey use cases: run a step of a realm's tree and perform what its nodes ask for
(seed 002; DESIGN.md layer 3), and manage the realm's trees.

The engine is pure; this is its loop. Pushes go through `SessionService.create/get/cancel`
(so every device is notified, and webhooks, limits and delivery apply), registrations
through `DeviceService.start_registration`, and what only journeys keep (recovery codes,
opt-outs, imported trees) through `tx.journeys`. A step of the REST layer is one call:

    progress = await journeys.begin(realm, tree_name, request)       # the first, empty body
    progress = await journeys.step(state, submitted_callbacks, request)
    # Asking(state, shown): seal state.to_json() into the authId, render shown.to_json()
    # Finished(state, success, error): the session cookie, or the 401
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, replace

from argon2 import PasswordHasher

from pushgate.accounts.model import User, check_username, normalize_realm
from pushgate.accounts.service import require_realm
from pushgate.audit.model import AuditEntry
from pushgate.clock import Clock
from pushgate.devices.enrollment import QrSettings, registration_uri
from pushgate.devices.model import PendingRegistration
from pushgate.devices.service import DeviceService
from pushgate.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    RateLimited,
    Unavailable,
)
from pushgate.journeys import effects as fx
from pushgate.journeys import recovery_codes
from pushgate.journeys.builtin import DEFAULT_TREE, NAMES, builtin_tree
from pushgate.journeys.engine import (
    NO_REQUEST,
    Asking,
    Finished,
    Performing,
    Progress,
    resume,
    start,
    submit,
)
from pushgate.journeys.model import StoredTree
from pushgate.journeys.nodes.base import RequestInfo
from pushgate.journeys.state import JourneyState
from pushgate.journeys.tree import Tree, check_tree_name, load_tree
from pushgate.protocol import qr
from pushgate.sessions.model import Content, SessionStatus
from pushgate.sessions.service import UNDELIVERED, NewSession, SessionService
from pushgate.store.ports import Store, UnitOfWork

log = logging.getLogger("pushgate.journeys")
TREE_CACHE_MS = 5_000  # how long a process keeps a parsed tree before reading it again
_PUSH_STATES = {
    SessionStatus.PENDING: fx.PushState.PENDING,
    SessionStatus.APPROVED: fx.PushState.APPROVED,
    SessionStatus.DENIED: fx.PushState.DENIED,
    SessionStatus.EXPIRED: fx.PushState.EXPIRED,
    SessionStatus.CANCELED: fx.PushState.GONE,
    SessionStatus.FAILED: fx.PushState.GONE,
}


@dataclass(frozen=True, slots=True)
class TreeInfo:
    name: str
    builtin: bool  # the shipped definition (not replaced by an import)
    default: bool
    updated_ms: int | None


class JourneyService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        sessions: SessionService,
        devices: DeviceService,
        qr_settings: QrSettings,
    ) -> None:
        self._store = store
        self._clock = clock
        self._sessions = sessions
        self._devices = devices
        self._qr = qr_settings
        self._hasher = PasswordHasher()
        self._trees: dict[tuple[str, str], tuple[Tree, int]] = {}

    # trees ------------------------------------------------------------------------------------

    async def tree(self, realm: str, name: str = DEFAULT_TREE) -> Tree:
        """The realm's tree of that name: imported, else built in; NotFound otherwise."""
        realm = normalize_realm(realm)
        now = self._clock.now_ms()
        cached = self._trees.get((realm, name))
        if cached is not None and cached[1] > now:
            return cached[0]
        async with self._store.autocommit() as db:
            stored = await db.journeys.get_tree(realm, name)
        tree = load_tree(stored.definition) if stored else builtin_tree(name)
        if tree is None:
            raise NotFound(f"no journey {name!r} in realm {realm}")
        self._trees[(realm, name)] = (tree, now + TREE_CACHE_MS)
        return tree

    async def list_trees(self, realm: str) -> list[TreeInfo]:
        async with self._store.autocommit() as db:
            realm = await require_realm(db, realm)
            stored = {t.name: t for t in await db.journeys.list_trees(realm)}
        names = sorted(set(stored) | set(NAMES))
        return [
            TreeInfo(
                name,
                name not in stored,
                name == DEFAULT_TREE,
                stored[name].updated_ms if name in stored else None,
            )
            for name in names
        ]

    async def export_tree(self, realm: str, name: str) -> str:
        async with self._store.autocommit() as db:
            realm = await require_realm(db, realm)
        return (await self.tree(realm, check_tree_name(name))).to_json()

    async def import_tree(self, realm: str, definition: str) -> Tree:
        """Validate and store a tree (replacing the realm's tree of its `_id`, a built-in
        one included); TreeError says what is wrong with it, and nothing is stored."""
        tree = load_tree(definition)
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            realm = await require_realm(tx, realm)
            old = await tx.journeys.get_tree(realm, tree.name)
            created = old.created_ms if old else now
            await tx.journeys.put_tree(StoredTree(realm, tree.name, definition, created, now))
            await tx.audit.append(
                AuditEntry(realm, "journey.imported", tree.name, now, {"nodes": len(tree.nodes)})
            )
        self._trees.pop((realm, tree.name), None)
        return tree

    # steps ------------------------------------------------------------------------------------

    async def begin(
        self, realm: str, name: str = DEFAULT_TREE, request: RequestInfo = NO_REQUEST
    ) -> Asking | Finished:
        realm = normalize_realm(realm)
        tree = await self.tree(realm, name)
        return await self._drive(tree, start(tree, realm, self._clock.now_ms(), request), request)

    async def step(
        self, state: JourneyState, callbacks: object, request: RequestInfo = NO_REQUEST
    ) -> Asking | Finished:
        """The next step after `callbacks` were submitted for `state`; InvalidCallbacks if
        they are not what was shown (nothing is performed then)."""
        tree = await self.tree(state.realm, state.tree)
        progress = submit(tree, state, callbacks, self._clock.now_ms(), request)
        return await self._drive(tree, progress, request)

    async def _drive(
        self, tree: Tree, progress: Progress, request: RequestInfo
    ) -> Asking | Finished:
        while isinstance(progress, Performing):
            result = await self.perform(progress.run.state.realm, progress.effect)
            progress = resume(tree, progress.run.performed(result), self._clock.now_ms(), request)
        if isinstance(progress, Finished):
            fields = {"realm": progress.state.realm, "tree": tree.name, "success": progress.success}
            if progress.error:
                log.warning("journey failed", extra={"fields": {**fields, "error": progress.error}})
            else:
                log.info("journey finished", extra={"fields": fields})
        return progress

    # effects ----------------------------------------------------------------------------------

    async def perform(self, realm: str, effect: fx.Effect) -> fx.Result:
        match effect:
            case fx.LookUpUser(username):
                return await self._facts(realm, username)
            case fx.CreatePushSession():
                return await self._push(realm, effect)
            case fx.ReadPushSession(session_id):
                try:
                    session = await self._sessions.get(realm, session_id)
                except NotFound:
                    return fx.PushRead(fx.PushState.GONE)
                status = session.status_at(self._clock.now_ms())
                if status is SessionStatus.FAILED and session.detail == UNDELIVERED:
                    return fx.PushRead(fx.PushState.UNDELIVERED)
                return fx.PushRead(_PUSH_STATES[status])
            case fx.CancelPushSession(session_id):
                with suppress(NotFound, Conflict):  # it ended meanwhile: nothing to cancel
                    await self._sessions.cancel(realm, session_id)
                return None
            case fx.StartRegistration(username, issuer, background):
                started = await self._devices.start_registration(realm, username)
                uri = started.uri
                if issuer or background:
                    user = await self._user(realm, username)
                    assert user is not None  # start_registration found it
                    uri = self._uri(started.registration, user, issuer, background)
                registration = started.registration
                return fx.RegistrationRead(
                    registration.message_id, uri, False, registration.expires_ms
                )
            case fx.ReadRegistration(username, message_id, issuer, background):
                return await self._registration(realm, username, message_id, issuer, background)
            case fx.SaveRecoveryCodes(username, codes):
                await self._save_codes(realm, username, codes)
                return None
            case fx.UseRecoveryCode(username, code):
                return await self._use_code(realm, username, code)
            case fx.MarkOptOut(username, method):
                await self._opt_out(realm, username, method)
                return None
            case fx.RecordFailure(username, why):
                await self._record_failure(realm, username, why)
                return None
        raise AssertionError(f"no way to perform {effect!r}")

    async def _user(self, realm: str, username: str, db: UnitOfWork | None = None) -> User | None:
        try:
            name = check_username(username)
        except InvalidRequest:
            return None
        if db is not None:
            return await db.accounts.get_user(realm, name)
        async with self._store.autocommit() as reader:
            return await reader.accounts.get_user(realm, name)

    async def _facts(self, realm: str, username: str) -> fx.UserFacts | None:
        try:
            name = check_username(username)
        except InvalidRequest:
            return None
        async with self._store.autocommit() as db:
            user, devices = await db.devices.user_and_active(realm, name)
            if user is None:
                return None
            opted_out = await db.journeys.opted_out(user.id, "push")
        return fx.UserFacts(
            user.password_hash, user.locked, len(devices), opted_out, self._qr.issuer
        )

    async def _push(
        self, realm: str, effect: fx.CreatePushSession
    ) -> fx.PushCreated | fx.PushNotSent:
        request = NewSession(
            username=effect.username,
            content=Content(title=effect.message, payload=effect.custom_payload),
            ttl_seconds=effect.ttl_seconds,
            push_type=effect.push_type,
            context=dict(effect.context) if effect.context is not None else None,
        )
        try:
            session = await self._sessions.create(realm, request)
        except Unavailable as exc:
            return fx.PushNotSent(fx.FailureReason.CTS_ERROR, exc.reason)
        except (RateLimited, InvalidRequest) as exc:
            return fx.PushNotSent(fx.FailureReason.TRANSMISSION_FAILURE, exc.reason)
        if session.status is not SessionStatus.PENDING:
            return fx.PushNotSent(fx.FailureReason.TRANSMISSION_FAILURE, "no device to notify")
        return fx.PushCreated(session.id, session.answer_code, session.expires_ms)

    def _uri(
        self,
        registration: PendingRegistration,
        user: User,
        issuer: str | None,
        background: str | None,
    ) -> str:
        """The registration's URI with a Push Registration node's own issuer and colour."""
        config = QrSettings(self._qr.public_base, issuer or self._qr.issuer, self._qr.lb_cookie)
        uri = qr.parse(registration_uri(registration, user, config))
        if background:
            uri = replace(uri, background=background)
        return qr.build(uri)

    async def _registration(
        self, realm: str, username: str, message_id: str, issuer: str | None, background: str | None
    ) -> fx.RegistrationRead | None:
        async with self._store.autocommit() as db:
            user = await self._user(realm, username, db)
            registration = await db.devices.get_registration(realm, message_id)
        if user is None or registration is None or registration.user_id != user.id:
            return None
        return fx.RegistrationRead(
            message_id,
            self._uri(registration, user, issuer, background),
            registration.completed_ms is not None,
            registration.expires_ms,
        )

    async def _save_codes(self, realm: str, username: str, codes: Sequence[str]) -> None:
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            user = await self._user(realm, username, tx)
            if user is None:
                raise NotFound(f"no user {username!r} in realm {realm}")
            digests = [recovery_codes.digest(user.id, code) for code in codes]
            await tx.journeys.replace_recovery_codes(user.id, digests, now)
            await tx.audit.append(
                AuditEntry(realm, "recovery_codes.issued", user.id, now, {"count": len(digests)})
            )

    async def _use_code(self, realm: str, username: str, code: str) -> bool:
        if not recovery_codes.is_code(code):
            return False
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            user = await self._user(realm, username, tx)
            if user is None or user.locked:
                return False
            used = await tx.journeys.use_recovery_code(
                user.id, recovery_codes.digest(user.id, code)
            )
            if used:
                await tx.audit.append(AuditEntry(realm, "recovery_code.used", user.id, now))
        return used

    async def _opt_out(self, realm: str, username: str, method: str) -> None:
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            user = await self._user(realm, username, tx)
            if user is None:
                raise NotFound(f"no user {username!r} in realm {realm}")
            await tx.journeys.set_opt_out(user.id, method, now)
            await tx.audit.append(
                AuditEntry(realm, "mfa.opted_out", user.id, now, {"method": method})
            )

    async def _record_failure(self, realm: str, username: str, why: str) -> None:
        """One more consecutive failure toward the realm's lock, counted as `/v1`'s denials
        are (the same lock, the same webhooks)."""
        found = await self._user(realm, username)
        if found is None:
            return
        now = self._clock.now_ms()
        audit = AuditEntry(realm, "journey.failure", found.id, now, {"why": why})
        await self._sessions.count_failure(realm, found.id, found.username, now, audit=audit)

    # users ------------------------------------------------------------------------------------

    async def set_password(self, realm: str, username: str, password: str) -> None:
        """Set the password the Data Store Decision checks (`pushgate user passwd`)."""
        try:
            password.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest("a password must be valid Unicode text") from None
        if not password:
            raise InvalidRequest("a password must not be empty")
        password_hash = self._hasher.hash(password)
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            realm = await require_realm(tx, realm)
            user = await self._user(realm, username, tx)
            if user is None or not await tx.journeys.set_password_hash(user.id, password_hash):
                raise NotFound(f"no user {username!r} in realm {realm}")
            await tx.audit.append(AuditEntry(realm, "user.password_set", user.id, now))

    async def recovery_codes_left(self, realm: str, username: str) -> int:
        async with self._store.autocommit() as db:
            user = await self._user(normalize_realm(realm), username, db)
            if user is None:
                raise NotFound(f"no user {username!r} in realm {realm}")
            return await db.journeys.count_recovery_codes(user.id)
