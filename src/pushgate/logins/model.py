"""A login session, AM's SSO token (spec forgerock-push.md §8.1: `tokenId` and the
`iPlanetDirectoryPro` cookie). Pure.

The token is 32 bytes from the CSPRNG; only its SHA-256 digest is stored, so a copy of the
database holds no usable session. A token has no structure for a forger to aim at: it is
found by its digest or not at all.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

TOKEN_BYTES = 32
MAX_TOKEN_CHARS = 128  # a token is 43 characters; anything much longer is not one of ours
COOKIE = "iPlanetDirectoryPro"  # AM's SSO cookie and header name; the SDKs send it as is


@dataclass(frozen=True, slots=True)
class Login:
    realm: str
    user_id: str
    username: str
    tree: str  # the journey that opened it
    created_ms: int
    expires_ms: int

    def open_at(self, now_ms: int) -> bool:
        return now_ms < self.expires_ms


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_token(token: object) -> bool:
    return isinstance(token, str) and 0 < len(token) <= MAX_TOKEN_CHARS
