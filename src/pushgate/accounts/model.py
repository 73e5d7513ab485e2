"""Realms, users and relying-party API keys (DESIGN.md "Other entities"). Pure."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from pushgate.errors import InvalidRequest

ROOT_REALM = "/"
_REALM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
# Lone surrogates (what a command line makes of bytes that are not UTF-8) cannot be stored.
_USERNAME = re.compile(r"[^\x00-\x1f\x7f:\ud800-\udfff]{1,256}")
API_KEY_PREFIX = "pgk_"


def normalize_realm(name: str) -> str:
    """`/`, `root` or empty → `/`; `alpha` or `/alpha` → `/alpha`. One level of sub-realm."""
    bare = name.strip().strip("/")
    if bare in ("", "root"):
        return ROOT_REALM
    if not _REALM_NAME.fullmatch(bare):
        raise InvalidRequest(f"invalid realm name {name!r}: use letters, digits, '-' and '_'")
    return "/" + bare


def check_username(username: str) -> str:
    # ':' would split the QR label on iOS (spec §3.1); control characters and text that is not
    # Unicode have no place here.
    if not _USERNAME.fullmatch(username) or username != username.strip():
        raise InvalidRequest(
            "a username is 1-256 characters without ':', control characters, outer spaces or"
            " text that is not valid Unicode"
        )
    return username


@dataclass(frozen=True, slots=True)
class Realm:
    name: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class User:
    id: str
    realm: str
    username: str
    password_hash: str | None
    created_ms: int


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    realm: str
    key_hash: str
    created_ms: int
    revoked_ms: int | None = None


def new_api_key() -> str:
    """A 256-bit key shown once; only its hash is stored."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # The key carries 256 bits of entropy, so a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
