"""Devices (AM's push device profile and mechanism) and pending registrations. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from pushgate.errors import InvalidRequest

MAX_DEVICE_NAME = 256  # the column's width
_DEVICE_NAME = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff]{1,256}")


class DeviceStatus(StrEnum):
    ACTIVE = "active"
    # Its provider said the push token is dead (APNs 410, FCM UNREGISTERED, Web Push 410...):
    # no session notifies it or counts it until a refresh brings a token (delivery/).
    INACTIVE = "inactive"
    BLOCKED = "blocked"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class Device:
    id: str  # the `pid` of the QR code
    realm: str
    user_id: str
    mechanism_uid: str
    secret: bytes
    push_token: str
    device_type: str
    communication_type: str
    name: str
    status: DeviceStatus
    created_ms: int
    updated_ms: int


@dataclass(frozen=True, slots=True)
class PendingRegistration:
    message_id: str
    realm: str
    user_id: str
    device_id: str
    secret: bytes
    challenge: bytes
    created_ms: int
    expires_ms: int
    completed_ms: int | None = None


def redact_token(token: str) -> str:
    """Enough of a push token to tell two apart in a log, never the whole of it."""
    return token[:6] + "…" if len(token) > 6 else "…"


@dataclass(frozen=True, slots=True)
class DeviceUpdate:
    """A refresh: the device's new push channel (and name, if it sent one)."""

    push_token: str
    device_type: str
    communication_type: str
    name: str | None = None


def check_device_name(name: str) -> str:
    """A name a person gives a device on /account or an operator on the CLI: shown in lists
    and pages, so no control characters and nothing that is not valid Unicode."""
    if not _DEVICE_NAME.fullmatch(name) or name != name.strip():
        raise InvalidRequest(
            f"a device name is 1-{MAX_DEVICE_NAME} characters without control characters or"
            " outer spaces"
        )
    return name
