"""Login sessions (AM's SSO token): opened when a journey succeeds, validated by whoever holds
the token, closed by logout (spec forgerock-push.md §8.1; issue 9).

Also the one-time use of a journey step: the REST layer consumes each authId's step id here
before it runs the step, so a step replayed (or submitted twice at once) is refused.
"""

from __future__ import annotations

import logging
import secrets

from pushgate.accounts.model import check_username, normalize_realm
from pushgate.audit.model import AuditEntry
from pushgate.clock import Clock
from pushgate.errors import NotFound, Unavailable
from pushgate.logins.model import Login, looks_like_token, new_token, token_digest
from pushgate.store.ports import Store

log = logging.getLogger("pushgate.logins")
PURGE_ONE_IN = 128  # writes that also delete the expired rows (no background task needed)


class LoginService:
    def __init__(self, store: Store, clock: Clock, *, lifetime_seconds: int) -> None:
        self._store = store
        self._clock = clock
        self._lifetime_ms = lifetime_seconds * 1000

    async def open(self, realm: str, username: str, tree: str) -> tuple[str, Login]:
        """A new session for the user; NotFound if there is no such user."""
        realm = normalize_realm(realm)
        now = self._clock.now_ms()
        token = new_token()
        async with self._store.transaction() as tx:
            user = await tx.accounts.get_user(realm, check_username(username))
            if user is None:
                raise NotFound(f"no user {username!r} in realm {realm}")
            login = Login(realm, user.id, user.username, tree, now, now + self._lifetime_ms)
            await tx.logins.add(token_digest(token), login)
            await tx.audit.append(AuditEntry(realm, "login.opened", user.id, now, {"tree": tree}))
        await self._maybe_purge(now)
        return token, login

    async def validate(self, token: str) -> Login | None:
        """The session of `token`; None if unknown, expired or logged out."""
        if not looks_like_token(token):
            return None
        async with self._store.autocommit() as db:
            login = await db.logins.get(token_digest(token))
        if login is None or not login.open_at(self._clock.now_ms()):
            return None
        return login

    async def close(self, token: str) -> bool:
        """Log out; False if the token was not open (unknown, expired, closed already)."""
        if not looks_like_token(token):
            return False
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            login = await tx.logins.delete(token_digest(token))
            if login is None or not login.open_at(now):
                return False
            await tx.audit.append(AuditEntry(login.realm, "login.closed", login.user_id, now))
        return True

    async def consume_step(self, step_id: str, expires_ms: int) -> bool:
        """True the first time a journey step id is submitted, False after (one insert)."""
        async with self._store.autocommit() as db:
            first = await db.logins.consume_step(step_id, expires_ms)
        await self._maybe_purge(self._clock.now_ms())
        return first

    async def purge(self) -> int:
        async with self._store.autocommit() as db:
            return await db.logins.purge(self._clock.now_ms())

    async def _maybe_purge(self, now_ms: int) -> None:
        if secrets.randbelow(PURGE_ONE_IN):
            return
        try:
            async with self._store.autocommit() as db:
                gone = await db.logins.purge(now_ms)
        except Unavailable:  # housekeeping: the next write tries again
            return
        if gone:
            log.info("expired logins purged", extra={"fields": {"rows": gone}})
