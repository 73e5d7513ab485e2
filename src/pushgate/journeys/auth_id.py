"""The `authId` of a journey step (spec forgerock-push.md §8.1): the journey state sealed so
that the browser or SDK can carry it between steps and cannot read or change it. Pure.

AM's authId is a signed JWT around a server-side session; here it is the whole state,
encrypted and authenticated with AES-256-GCM under a key derived from the server's secret key
(HKDF-SHA256, its own `info`, so it can never open a device secret or the reverse):

    authId = base64url(version | nonce | AES-GCM(expires_ms | step_id | state JSON))

The realm is the associated data: an authId of one realm does not open in another. The tree
and the expiry are checked after opening. Each sealed authId carries a fresh random step id,
so the REST layer can refuse a step submitted twice (one insert of the id per step).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pushgate.errors import InvalidRequest
from pushgate.journeys.callbacks import InvalidCallbacks
from pushgate.journeys.state import JourneyState

HKDF_INFO = b"pushgate journey authId"
_VERSION = b"\x01"
_NONCE_BYTES = 12
_STEP_ID_BYTES = 16
_HEADER = struct.Struct(">Q16s")  # expires_ms, step id
_TAG_BYTES = 16
# A 4 KB state (journeys.state.MAX_STATE_BYTES) seals into ~5.5 K characters; anything much
# longer is refused before any decoding.
MAX_AUTH_ID_CHARS = 8192


class InvalidAuthId(InvalidRequest):
    """An authId that is not one of ours, was changed, belongs to another realm or tree, or
    expired. The wire sees only the generic message; the reason goes to the log."""


class ExpiredAuthId(InvalidAuthId):
    """A genuine authId past its lifetime: AM answers 401 "Session has timed out"."""

    status = 401
    code = "unauthorized"


@dataclass(frozen=True, slots=True)
class OpenedAuthId:
    state: JourneyState
    step_id: str  # hex: what the REST layer consumes once
    expires_ms: int


def derive_key(secret_key: bytes) -> bytes:
    """The authId key of a deployment: HKDF-SHA256 of the server secret key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(secret_key)


def _associated(realm: str) -> bytes:
    return b"pushgate authId\x00" + realm.encode("utf-8")


class AuthIds:
    """Seals and opens authIds; `key` is the server secret key (PUSHGATE_SECRET_KEY)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the secret key must be at least 16 bytes")
        self._aead = AESGCM(derive_key(key))

    def seal(self, state: JourneyState, now_ms: int, ttl_ms: int) -> str:
        step_id = secrets.token_bytes(_STEP_ID_BYTES)
        plaintext = _HEADER.pack(now_ms + ttl_ms, step_id) + state.to_json().encode("utf-8")
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = _VERSION + nonce + self._aead.encrypt(nonce, plaintext, _associated(state.realm))
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def open(self, auth_id: str, realm: str, tree: str | None, now_ms: int) -> JourneyState:
        """The state sealed into `auth_id`, if it was sealed for `realm` (and `tree`, when one
        is given) and has not expired; InvalidAuthId (ExpiredAuthId) otherwise."""
        return self.open_step(auth_id, realm, tree, now_ms).state

    def open_step(self, auth_id: str, realm: str, tree: str | None, now_ms: int) -> OpenedAuthId:
        """`open`, with the step id and the expiry (for the REST layer's replay check)."""
        plaintext = self._decrypt(auth_id, realm)
        expires_ms, step_id = _HEADER.unpack_from(plaintext)
        try:
            state = JourneyState.from_json(plaintext[_HEADER.size :])
        except InvalidCallbacks:
            raise InvalidAuthId(
                "Invalid authId", reason="the sealed state cannot be read"
            ) from None
        if state.realm != realm:  # the associated data already binds it; belt and braces
            raise InvalidAuthId("Invalid authId", reason="authId of another realm")
        if tree is not None and state.tree != tree:
            raise InvalidAuthId(
                "Invalid authId", reason=f"authId of tree {state.tree!r}, not {tree!r}"
            )
        if now_ms >= expires_ms:
            raise ExpiredAuthId("Session has timed out", reason="authId expired")
        return OpenedAuthId(state, step_id.hex(), expires_ms)

    def _decrypt(self, auth_id: str, realm: str) -> bytes:
        if not isinstance(auth_id, str) or not auth_id or len(auth_id) > MAX_AUTH_ID_CHARS:
            raise InvalidAuthId("Invalid authId", reason="not an authId (empty or too long)")
        try:
            raw = base64.urlsafe_b64decode(auth_id + "=" * (-len(auth_id) % 4))
        except (binascii.Error, ValueError):
            raise InvalidAuthId("Invalid authId", reason="authId is not base64url") from None
        if raw[:1] != _VERSION or len(raw) < 1 + _NONCE_BYTES + _HEADER.size + _TAG_BYTES:
            raise InvalidAuthId("Invalid authId", reason="not an authId of this version")
        nonce = raw[1 : 1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, raw[1 + _NONCE_BYTES :], _associated(realm))
        except InvalidTag:
            raise InvalidAuthId(
                "Invalid authId", reason="authId tampered with, of another realm or key"
            ) from None
