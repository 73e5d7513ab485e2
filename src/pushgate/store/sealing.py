"""Secrets encrypted at rest: device shared secrets, pending registrations' secrets, webhook
signing secrets (DESIGN.md "Device"; security.md R4).

PingAM's protocol makes the server hold each device's HMAC key, so a copy of the database must
not be a copy of every authenticator. Secrets are sealed with AES-256-GCM under a server key
that lives outside the database; the row's identity is the associated data, so a sealed
secret moved to another row does not open. Pure: the keys come in as bytes.

A key ring makes rotation possible (docs/KEYS.md): the first key seals, every key opens.
A value names the key that sealed it by a one-byte id derived from the key itself:

    \\x02 | key id | nonce (12) | AES-GCM ciphertext and tag     (since issue 10)
    \\x01 | nonce (12) | AES-GCM ciphertext and tag               (before: tried with every key)

With a `source`, the ring is asked for again on every seal (the source re-reads its key file
when that changed, at most every few seconds) and at once when a value names a key the ring
does not hold: a process started before a rotation learns the new key without a restart.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_LEGACY = 0x01
_KEYED = 0x02
_NONCE_BYTES = 12
_TAG_BYTES = 16

# The ring now: `reread=True` asks the source to look at its file again before answering.
KeySource = Callable[[bool], Sequence[bytes]]


class SealError(ValueError):
    """A sealed value that does not open: a wrong server key, or a tampered row."""


def key_id(key: bytes) -> int:
    """The byte that names `key` in the values it seals (not secret: a hash of the key)."""
    return hashlib.sha256(b"pushgate sealing key id\0" + key).digest()[0]


def sealed_key_id(sealed: bytes) -> int | None:
    """The id of the key that sealed `sealed`; None for a value from before key ids."""
    if len(sealed) >= 2 and sealed[0] == _KEYED:
        return sealed[1]
    return None


def _check(keys: Sequence[bytes]) -> tuple[bytes, ...]:
    ring = tuple(keys)
    if not ring:
        raise ValueError("a key ring needs a key")
    if any(len(key) != KEY_BYTES for key in ring):
        raise ValueError("the secret key must be 32 bytes")
    ids = [key_id(key) for key in ring]
    if len(set(ids)) != len(ids):
        raise ValueError("two keys of the ring have the same id (or the same key is twice)")
    return ring


class Sealer:
    def __init__(self, key: bytes, *older: bytes, source: KeySource | None = None) -> None:
        self._source = source
        self._ring: tuple[bytes, ...] = ()
        self._aeads: dict[int, AESGCM] = {}
        self._use(_check((key, *older)))

    def _use(self, ring: tuple[bytes, ...]) -> None:
        if ring != self._ring:
            self._aeads = {key_id(key): AESGCM(key) for key in ring}
            self._ring = ring
            self._primary = key_id(ring[0])

    def _refresh(self, reread: bool) -> None:
        if self._source is not None:
            self._use(_check(self._source(reread)))

    @property
    def primary_id(self) -> int:
        """The id of the key new values are sealed with."""
        self._refresh(reread=False)
        return self._primary

    @property
    def key_ids(self) -> tuple[int, ...]:
        self._refresh(reread=False)
        return tuple(key_id(key) for key in self._ring)

    def needs_reseal(self, sealed: bytes) -> bool:
        """Whether `sealed` is under another key than the one new values get."""
        return sealed_key_id(sealed) != self.primary_id

    def seal(self, plaintext: bytes, context: str) -> bytes:
        self._refresh(reread=False)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        ciphertext = self._aeads[self._primary].encrypt(nonce, plaintext, context.encode())
        return bytes((_KEYED, self._primary)) + nonce + ciphertext

    def open(self, sealed: bytes, context: str) -> bytes:
        try:
            return self._open(sealed, context)
        except SealError:
            if self._source is None:
                raise
        # A key this process has not loaded yet (rotated since it started): look again.
        self._refresh(reread=True)
        return self._open(sealed, context)

    def _open(self, sealed: bytes, context: str) -> bytes:
        version = sealed[:1]
        if version == bytes((_KEYED,)) and len(sealed) >= 2 + _NONCE_BYTES + _TAG_BYTES:
            aead = self._aeads.get(sealed[1])
            candidates = [aead] if aead is not None else []
            body = sealed[2:]
        elif version == bytes((_LEGACY,)) and len(sealed) >= 1 + _NONCE_BYTES + _TAG_BYTES:
            candidates = [self._aeads[key_id(key)] for key in self._ring]
            body = sealed[1:]
        else:
            raise SealError(f"not a sealed value ({context})")
        nonce, ciphertext = body[:_NONCE_BYTES], body[_NONCE_BYTES:]
        for aead in candidates:
            try:
                return aead.decrypt(nonce, ciphertext, context.encode())
            except InvalidTag:
                continue
        raise SealError(
            f"cannot open the secret of {context}: is PUSHGATE_SECRET_KEY the key it was "
            "sealed with?"
        )


def new_key(avoid: Sequence[bytes] = ()) -> bytes:
    """A fresh key whose id differs from those of `avoid` (ids are one byte)."""
    taken = {key_id(key) for key in avoid}
    while True:
        key = secrets.token_bytes(KEY_BYTES)
        if key_id(key) not in taken:
            return key
