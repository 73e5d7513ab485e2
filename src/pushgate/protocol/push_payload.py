"""The server → device push JWT (spec §5.1).

Every claim is a JSON string: legacy Android casts each claim with `(String)` and drops the
notification otherwise; iOS needs `t` as a string.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pushgate.protocol import jwt
from pushgate.protocol.encoding import b64std, compact_json

MAX_CUSTOM_PAYLOAD_BYTES = 3 * 1024  # AM's limit on the `p` claim


class PushType(StrEnum):
    DEFAULT = "default"
    CHALLENGE = "challenge"
    BIOMETRIC = "biometric"
    # The person types the 6-digit code the relying party shows (NIST SP 800-63B rev 4: a
    # secret the user transfers). Authenticators that do not know it treat it as `default`.
    CODE = "code"


@dataclass(frozen=True, slots=True)
class PushClaims:
    mechanism_uid: str
    challenge: bytes
    lb_cookie: str
    ttl_seconds: int
    created_ms: int
    message: str
    push_type: PushType
    username: str
    numbers: tuple[int, ...] | None = None
    custom_payload: dict[str, object] | None = None
    context: dict[str, object] | None = None
    operation: dict[str, object] | None = None  # {"id", "name", "data"}

    def as_dict(self) -> dict[str, str]:
        # Key order of AM 8's Push Sender node; the byte form matters only for vectors.
        claims = {
            "u": self.mechanism_uid,
            "l": b64std(self.lb_cookie.encode()),
            "c": b64std(self.challenge),
            "m": self.message,
            "k": str(self.push_type),
            "i": str(self.created_ms),
            "t": str(self.ttl_seconds),
            "d": self.username,
        }
        if self.push_type is PushType.CHALLENGE:
            if not self.numbers:
                raise ValueError("a challenge push needs numbers")
            claims["n"] = ",".join(str(n) for n in self.numbers)
        if self.custom_payload is not None:
            claims["p"] = compact_json(self.custom_payload)
        if self.context is not None:
            claims["x"] = compact_json(self.context)
        if self.operation is not None:
            claims["o"] = compact_json(self.operation)
        return claims


def push_jwt(claims: PushClaims, secret: bytes) -> str:
    return jwt.sign(claims.as_dict(), secret)
