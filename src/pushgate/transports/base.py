"""The port of the push providers (DESIGN.md layers; spec push-transports.md §0). Pure, no I/O.

A transport takes one `PushRequest` and answers with one `SendResult`; it never raises for
anything a provider says. The outbox handler maps the result: `Delivered` → done,
`RetryAfter` → `Retry` (honouring `seconds` when the provider gave one), `TokenGone` → mark the
device's push token dead and give up, `Rejected` → give up.

The payload builders here are shared by every transport, so APNs direct and SNS's `APNS` key
carry the same `aps` object, and FCM, SNS's `GCM` key and Web Push the same data map
(forgerock-push.md §5.2). `transports/tls.py` builds the client TLS context that trusts
`PUSHGATE_TLS_CA_FILE`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Protocol

# APNs and FCM refuse bodies above 4096 bytes (push-transports.md §0.2).
MAX_PAYLOAD_BYTES = 4096
# apns-collapse-id is at most 64 bytes; Web Push's Topic is shorter and derived by its transport.
MAX_COLLAPSE_ID_BYTES = 64

# Keys of the push itself; an extra with one of these names would overwrite it on the device.
RESERVED_KEYS = frozenset({"aps", "message", "messageId"})

# Fixed namespace: the same message id gives the same apns-id in every process, so a retry of
# a push is recognisably the same push in APNs' logs and ours.
_REQUEST_ID_NAMESPACE = uuid.UUID("0f6c2a52-3c1e-5d4b-9a51-6f1b0e0c7a11")

# The iOS SDKs pick the notification's actions by category (forgerock-push.md §5.2).
_APNS_CATEGORIES = {
    "default": "authentication",
    "challenge": "authentication_challenge",
    "biometric": "authentication_biometric",
}


@dataclass(frozen=True, slots=True)
class PushRequest:
    """One push to one device.

    `jwt` set: a visible push (a login prompt, `mtoken.operationInit`), `message_id` is the
    notification's `AUTHENTICATE:...` id. `jwt` None: a silent push (`mtoken.operationFinished`,
    `mtoken.statusChange`); `message_id` is then any stable key of that push.
    """

    token: str  # the device's push token (APNs hex token, FCM registration token, ...)
    message_id: str
    expires_ms: int  # the session's deadline; nothing is worth delivering after it
    collapse_id: str  # per session, so a re-send replaces the earlier prompt
    jwt: str | None = None
    title: str | None = None
    body: str = ""
    push_type: str = "default"  # default | challenge | biometric | code
    extras: Mapping[str, str] = field(default_factory=dict)  # PowerAuth extras (seed 004)

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("a push needs the device's push token")
        if not self.message_id:
            raise ValueError("a push needs a message id")
        if not self.collapse_id or len(self.collapse_id.encode()) > MAX_COLLAPSE_ID_BYTES:
            raise ValueError(f"a collapse id has 1 to {MAX_COLLAPSE_ID_BYTES} bytes")
        for key, value in self.extras.items():
            # FCM's data map is string → string only; a number is INVALID_ARGUMENT (§2).
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError("push extras are strings")
            if key in RESERVED_KEYS:
                raise ValueError(f"push extra {key!r} would overwrite the push itself")

    @property
    def silent(self) -> bool:
        return self.jwt is None

    @property
    def request_id(self) -> uuid.UUID:
        """The stable id of this push (APNs `apns-id`), the same on every retry."""
        return uuid.uuid5(_REQUEST_ID_NAMESPACE, self.message_id)

    def seconds_left(self, now_ms: int) -> int:
        return max(0, (self.expires_ms - now_ms) // 1000)


@dataclass(frozen=True, slots=True)
class Delivered:
    """Accepted by the provider (not proof the device showed it)."""

    provider_id: str | None = None


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """A transient failure: try again, after `seconds` when the provider said so."""

    seconds: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class TokenGone:
    """The provider says the token is dead: mark the device inactive, never retry."""

    reason: str
    # APNs 410 `timestamp`: a device re-registered after it keeps its new token.
    since_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A permanent failure of this push (bad request, bad credentials, too large, too late)."""

    reason: str


SendResult = Delivered | RetryAfter | TokenGone | Rejected


class Transport(Protocol):
    async def send(self, request: PushRequest) -> SendResult: ...

    async def aclose(self) -> None: ...


def data_message(request: PushRequest) -> dict[str, str]:
    """The data map of FCM, SNS `GCM` and Web Push: AM's two keys plus the extras (§5.2)."""
    data = dict(request.extras)
    if request.jwt is not None:
        data["message"] = request.jwt
        data["messageId"] = request.message_id
    return data


def apns_payload(request: PushRequest) -> dict[str, object]:
    """The APNs body, AM's `aps` layout (§5.2) with the extras at the top level (seed 004).

    A silent push is `aps: {"content-available": 1}` only, as Apple requires for
    `apns-push-type: background`.
    """
    aps: dict[str, object]
    if request.jwt is None:
        aps = {"content-available": 1}
    else:
        alert: object = (
            {"title": request.title, "body": request.body} if request.title else request.body
        )
        aps = {
            "alert": alert,
            "sound": "default",
            "category": _APNS_CATEGORIES.get(request.push_type, "authentication"),
            "interruption-level": "time-sensitive",
            "messageId": request.message_id,
            "data": request.jwt,
            "content-available": 1,
            "mutable-content": 1,
        }
    return {**request.extras, "aps": aps}


# A provider asking for more than this is treated as asking for this: the session is gone by then.
MAX_RETRY_AFTER_SECONDS = 3600.0


def parse_retry_after(value: str | None, now_ms: int) -> float | None:
    """Seconds to wait from a `Retry-After` header (delay-seconds or an HTTP date, RFC 9110
    §10.2.3); None when absent or unreadable, so the caller's own backoff applies."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        return None
    seconds = when.timestamp() - now_ms / 1000
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)
