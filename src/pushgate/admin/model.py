"""Admin keys and their scopes (issue 10 "Administration", security.md §7). Pure.

An admin key is not a relying party's key: it belongs to no realm, it opens `/admin/...` only
(never `/v1`), and it carries the scopes it was made with. Only its hash is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from pushgate.errors import InvalidRequest

ADMIN_KEY_PREFIX = "pga_"
ALL_SCOPES = "all"  # shorthand for every scope, on the command line


class Scope(StrEnum):
    REALMS_READ = "realms:read"
    REALMS_WRITE = "realms:write"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    DEVICES_READ = "devices:read"
    DEVICES_WRITE = "devices:write"
    KEYS_READ = "keys:read"  # relying-party API keys
    KEYS_WRITE = "keys:write"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"
    JOURNEYS_READ = "journeys:read"
    JOURNEYS_WRITE = "journeys:write"
    AUDIT_READ = "audit:read"


_BY_NAME = {scope.value: scope for scope in Scope}


@dataclass(frozen=True, slots=True)
class AdminKey:
    id: str
    key_hash: str
    scopes: frozenset[Scope]
    created_ms: int
    label: str | None = None
    revoked_ms: int | None = None
    last_used_ms: int | None = None


def parse_scopes(names: Iterable[str]) -> frozenset[Scope]:
    """Scopes from their names (`all` for every one); InvalidRequest names an unknown one."""
    scopes: set[Scope] = set()
    for name in names:
        for part in name.replace(",", " ").split():
            if part == ALL_SCOPES:
                scopes.update(Scope)
            elif part in _BY_NAME:
                scopes.add(_BY_NAME[part])
            else:
                known = ", ".join(s.value for s in Scope)
                raise InvalidRequest(f"unknown scope {part!r}: use {ALL_SCOPES} or {known}")
    if not scopes:
        raise InvalidRequest("an admin key needs at least one scope")
    return frozenset(scopes)


def scopes_text(scopes: Iterable[Scope]) -> str:
    """The stored form: space-separated, in the order of `Scope`."""
    chosen = set(scopes)
    return " ".join(s.value for s in Scope if s in chosen)


def new_admin_key() -> str:
    """A 256-bit key shown once; only its hash is stored."""
    return ADMIN_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_admin_key(key: str) -> str:
    # 256 bits of entropy: a fast hash is enough, as for API keys (accounts/model.py).
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
