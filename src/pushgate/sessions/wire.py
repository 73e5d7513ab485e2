"""A push session as the relying-party API shows it (UnifyID's field names, seed 003). Pure.

`GET /v1/push/sessions/{id}`, the event stream and the webhooks' `data` all use this one form.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pushgate.protocol.push_payload import PushType
from pushgate.sessions.model import PushSession, SessionStatus


def timestamp(ms: int) -> str:
    """ISO 8601 in UTC with milliseconds: `2026-12-02T04:17:02.000Z`."""
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def session_json(session: PushSession, now_ms: int) -> dict[str, object]:
    status = session.status_at(now_ms)
    shown: dict[str, object] = {
        "id": session.id,
        "status": status.wire,
        "notificationCount": session.notification_count,
        "detail": session.detail,
        "expiresAt": timestamp(session.expires_ms),
        "updatedAt": timestamp(session.updated_ms),
        "pushType": session.push_type.value,
        "failureCount": session.failure_count,
        "denyReason": session.deny_reason,
    }
    # The number or code is for the login page while the session waits, never after.
    if session.answer_code is not None and status is SessionStatus.PENDING:
        key = "code" if session.push_type is PushType.CODE else "challengeNumber"
        shown[key] = session.answer_code
    if session.context is not None:
        shown["context"] = dict(session.context)
    if session.operation is not None:
        shown["operationId"] = session.id
        shown["operation"] = {"name": session.operation.name, "data": session.operation.data}
    return shown
