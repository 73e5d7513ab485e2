"""What nodes ask the world for, as values (STYLE.md §3): a node returns an effect, the
service (`journeys/service.py`) performs it and hands back its result. Pure.

Reads are effects too (looking up the user, reading a push session), so a node never touches
a store; effects whose result a node needs come back through `Perform`, those it only needs
done ride on its `Outcome`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from pushgate.journeys.callbacks import Json
from pushgate.protocol.push_payload import PushType


class FailureReason(StrEnum):
    """Push Sender's `PushAuthFailureReason` (seed 002, Outputs)."""

    MISSING_USERNAME = "MISSING_USERNAME"
    SENDER_ALREADY_USED = "SENDER_ALREADY_USED"
    CTS_ERROR = "CTS_ERROR"  # the push message could not be stored
    TRANSMISSION_FAILURE = "TRANSMISSION_FAILURE"  # nothing could be sent


class PushState(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    EXPIRED = "EXPIRED"
    GONE = "GONE"  # canceled, failed or unknown
    UNDELIVERED = "UNDELIVERED"  # failed: every push failed for good, no device polls


# effects with a result -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LookUpUser:
    username: str


@dataclass(frozen=True, slots=True)
class UserFacts:
    """What the nodes know of a user; `None` as the result of LookUpUser: no such user."""

    password_hash: str | None
    locked: bool
    devices: int  # active push devices
    opted_out: bool  # of push MFA (Opt-out Multi-Factor Authentication)
    issuer: str  # what `{{issuer}}` becomes: the issuer the devices were registered with


@dataclass(frozen=True, slots=True)
class CreatePushSession:
    username: str
    message: str
    push_type: PushType
    ttl_seconds: int
    context: Mapping[str, Json] | None = None
    custom_payload: str | None = None  # compact JSON of the custom payload attributes


@dataclass(frozen=True, slots=True)
class PushCreated:
    session_id: str
    challenge_number: str | None
    expires_ms: int


@dataclass(frozen=True, slots=True)
class PushNotSent:
    reason: FailureReason
    detail: str


@dataclass(frozen=True, slots=True)
class ReadPushSession:
    session_id: str


@dataclass(frozen=True, slots=True)
class PushRead:
    state: PushState


@dataclass(frozen=True, slots=True)
class StartRegistration:
    username: str
    issuer: str | None = None  # None: the server's issuer
    background: str | None = None


@dataclass(frozen=True, slots=True)
class ReadRegistration:
    username: str
    message_id: str
    issuer: str | None = None
    background: str | None = None


@dataclass(frozen=True, slots=True)
class RegistrationRead:
    message_id: str
    uri: str  # the pushauth:// URI, rebuilt on each read: its secret never enters the state
    completed: bool
    expires_ms: int


@dataclass(frozen=True, slots=True)
class UseRecoveryCode:
    username: str
    code: str


# effects done for their own sake -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SaveRecoveryCodes:
    """Replace the user's recovery codes (only their hashes are stored)."""

    username: str
    codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MarkOptOut:
    username: str
    method: str


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A wrong password (or a journey the retry limit rejected): one more failure toward the
    user's lock, the same counter the push denials of `/v1` count on."""

    username: str
    why: str


@dataclass(frozen=True, slots=True)
class CancelPushSession:
    session_id: str


Effect = (
    LookUpUser
    | CreatePushSession
    | ReadPushSession
    | StartRegistration
    | ReadRegistration
    | UseRecoveryCode
    | SaveRecoveryCodes
    | MarkOptOut
    | RecordFailure
    | CancelPushSession
)
Result = UserFacts | PushCreated | PushNotSent | PushRead | RegistrationRead | bool | None
