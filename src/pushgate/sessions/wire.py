"""A push session as the relying-party API shows it (UnifyID's field names, seed 003). Pure.

`GET /v1/push/sessions/{id}`, the event stream and the webhooks' `data` all use this one form.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pushgate.sessions.model import PushSession


def timestamp(ms: int) -> str:
    """ISO 8601 in UTC with milliseconds: `2026-12-02T04:17:02.000Z`."""
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def session_json(session: PushSession, now_ms: int) -> dict[str, object]:
    return {
        "id": session.id,
        "status": session.status_at(now_ms).wire,
        "notificationCount": session.notification_count,
        "detail": session.detail,
        "expiresAt": timestamp(session.expires_ms),
        "updatedAt": timestamp(session.updated_ms),
    }
