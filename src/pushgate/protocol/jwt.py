"""HS256 compact JWS for device messages and push payloads (spec §2, §5.1; security.md §2).

Signing emits the exact header `{"typ":"JWT","alg":"HS256"}` (legacy iOS re-pads the header
with standard Base64, so its length and alphabet matter). Verification pins HS256 no matter
what the token says, refuses `crit`, duplicate member names and non-canonical Base64, and
returns the verified claims or raises InvalidJwt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jwt.algorithms import HMACAlgorithm

from pushgate.protocol.encoding import b64url, b64url_decode, compact_json, strict_json_object

MAX_JWT_CHARS = 8192
HEADER = {"typ": "JWT", "alg": "HS256"}
_HEADER_SEGMENT = b64url(compact_json(HEADER).encode())
# PyJWT's HS256 primitive, called directly: the segments are already parsed strictly here, and
# its general decode path re-parses them and inspects the key for PEM/JWK forms on every call,
# which cost more than the MAC itself (issue #3). The MAC check is hmac.compare_digest.
_HS256 = HMACAlgorithm(HMACAlgorithm.SHA256)


class InvalidJwt(ValueError):
    """The token is not an HS256 JWS signed with the key; the text says why (logs only)."""


MIN_KEY_BYTES = 32  # RFC 7518 §3.2: an HS256 key is at least as long as the hash


def sign(claims: Mapping[str, object], secret: bytes) -> str:
    if len(secret) < MIN_KEY_BYTES:
        raise ValueError("an HS256 key must be at least 32 bytes")
    signing_input = f"{_HEADER_SEGMENT}.{b64url(compact_json(dict(claims)).encode('utf-8'))}"
    return f"{signing_input}.{b64url(_HS256.sign(signing_input.encode('ascii'), secret))}"


def verify(token: object, secret: bytes) -> dict[str, Any]:
    if not isinstance(token, str) or not token:
        raise InvalidJwt("jwt is not a non-empty string")
    if len(secret) < MIN_KEY_BYTES:
        raise InvalidJwt("key shorter than 256 bits")
    if len(token) > MAX_JWT_CHARS:
        raise InvalidJwt("jwt too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidJwt("jwt is not three segments")
    try:
        header = strict_json_object(b64url_decode(parts[0]))
        payload = b64url_decode(parts[1])
        signature = b64url_decode(parts[2])
    except ValueError as exc:
        raise InvalidJwt(f"malformed jwt: {exc}") from exc
    if header.get("alg") != "HS256":
        raise InvalidJwt(f"alg {header.get('alg')!r} is not HS256")
    if "crit" in header:
        raise InvalidJwt("crit header present")
    typ = header.get("typ", "JWT")
    if not isinstance(typ, str) or typ.upper() != "JWT":
        raise InvalidJwt(f"typ {typ!r} is not JWT")
    # HS256 whatever the header says (checked above anyway): the key decides the algorithm.
    if not _HS256.verify(f"{parts[0]}.{parts[1]}".encode("ascii"), secret, signature):
        raise InvalidJwt("signature does not verify")
    try:
        return strict_json_object(payload)
    except ValueError as exc:
        raise InvalidJwt(f"claims: {exc}") from exc
