"""Push sessions and their per-device notifications (DESIGN.md, seed 003). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from pushgate.protocol.push_payload import PushType


class SessionStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    EXPIRED = "EXPIRED"
    CANCELED = "CANCELED"
    FAILED = "FAILED"

    @property
    def wire(self) -> str:
        """The UnifyID `status` value (spec peers.md §1.2)."""
        return _WIRE[self]

    @property
    def terminal(self) -> bool:
        return self is not SessionStatus.PENDING


_WIRE = {
    SessionStatus.PENDING: "sent",
    SessionStatus.APPROVED: "accepted",
    SessionStatus.DENIED: "rejected",
    SessionStatus.EXPIRED: "expired",
    SessionStatus.CANCELED: "canceled",
    SessionStatus.FAILED: "error",
}


@dataclass(frozen=True, slots=True)
class Content:
    """What the person sees: UnifyID's `notification` object."""

    title: str
    subtitle: str | None = None
    body: str | None = None
    payload: str | None = None

    @property
    def message(self) -> str:
        """The push JWT's `m` claim: the line the authenticator shows."""
        return self.body or self.title

    def custom_payload(self) -> dict[str, object]:
        """The `p` claim: the whole notification, so an app can show title and payload."""
        fields = {
            "title": self.title,
            "subtitle": self.subtitle,
            "body": self.body,
            "payload": self.payload,
        }
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True, slots=True)
class Operation:
    """What a session asks the person to authorize (PowerAuth-style, seed 004): a name such as
    `login` or `authorize_payment` and its data in the operation-data format."""

    name: str
    data: str | None = None


@dataclass(frozen=True, slots=True)
class PushSession:
    id: str
    realm: str
    username: str
    user_id: str | None
    status: SessionStatus
    content: Content
    push_type: PushType
    notification_count: int
    detail: str | None
    created_ms: int
    expires_ms: int
    updated_ms: int
    answer_code: str | None = None  # the challenge number or typed code the device must match
    context: Mapping[str, object] | None = None  # remoteIp, userAgent, location
    operation: Operation | None = None
    deny_reason: str | None = None
    failure_count: int = 0  # wrong picks, codes and operation bindings so far

    def status_at(self, now_ms: int) -> SessionStatus:
        """A pending session past its deadline reads as expired, even before the sweeper runs."""
        if self.status is SessionStatus.PENDING and now_ms >= self.expires_ms:
            return SessionStatus.EXPIRED
        return self.status


@dataclass(frozen=True, slots=True)
class Notification:
    message_id: str
    session_id: str
    device_id: str
    challenge: bytes
    numbers: tuple[int, ...] | None
    answer: int | None
    created_ms: int
    answered_ms: int | None = None
