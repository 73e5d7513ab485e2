"""Device shared secrets encrypted at rest (DESIGN.md "Device"; security.md R4).

PingAM's protocol makes the server hold each device's HMAC key, so a copy of the database must
not be a copy of every authenticator. Secrets are sealed with AES-256-GCM under a server key
that lives outside the database; the row's identity is the associated data, so a sealed
secret moved to another row does not open. Pure: the key comes in as bytes.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_VERSION = b"\x01"
_NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed value that does not open: a wrong server key, or a tampered row."""


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("the secret key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        if sealed[:1] != _VERSION or len(sealed) < 1 + _NONCE_BYTES + 16:
            raise SealError(f"not a sealed value ({context})")
        nonce = sealed[1 : 1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, sealed[1 + _NONCE_BYTES :], context.encode())
        except InvalidTag:
            raise SealError(
                f"cannot open the secret of {context}: is PUSHGATE_SECRET_KEY the key it was "
                "sealed with?"
            ) from None
