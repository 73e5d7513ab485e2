"""What the client returns: a session as `/v1` shows it, and the API's errors. No I/O.

Fields the client does not know yet stay in `Session.raw`, so a newer server never breaks an
older client; the known ones are attributes, `None` when the server did not send them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SENT = "sent"  # the only status that is not final


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    status: str  # sent | accepted | rejected | expired | canceled | error
    notification_count: int
    detail: str | None
    expires_at: datetime
    updated_at: datetime
    push_type: str | None = None
    challenge_number: str | None = None
    code: str | None = None
    context: Mapping[str, Any] | None = None
    operation: Mapping[str, Any] | None = None
    operation_id: str | None = None
    deny_reason: str | None = None
    failure_count: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        """True once the session has its answer (or will never get one)."""
        return self.status != SENT

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Session:
        """The session of a `/v1` JSON object; ValueError if a required field is missing."""
        try:
            return cls(
                id=str(data["id"]),
                status=str(data["status"]),
                notification_count=int(data["notificationCount"]),
                detail=data.get("detail"),
                expires_at=_timestamp(data["expiresAt"]),
                updated_at=_timestamp(data["updatedAt"]),
                push_type=data.get("pushType"),
                challenge_number=data.get("challengeNumber"),
                code=data.get("code"),
                context=data.get("context"),
                operation=data.get("operation"),
                operation_id=data.get("operationId"),
                deny_reason=data.get("denyReason"),
                failure_count=data.get("failureCount"),
                raw=dict(data),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a push session: {exc!r}") from None


def _timestamp(text: object) -> datetime:
    if not isinstance(text, str):
        raise ValueError(f"not a timestamp: {text!r}")
    return datetime.fromisoformat(text)  # `2026-12-02T04:17:02.000Z`: Python 3.11 reads the Z


class ApiError(Exception):
    """A refusal of the pushgate API: its HTTP status and the `{code, message}` body.

    `retry_after` (seconds) is set when the server said when to come back (429 `rateLimited`).
    """

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class StreamInterrupted(Exception):
    """An event stream kept ending before the session's final event."""
