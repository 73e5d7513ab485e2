"""The device's inbox actions (issue 8): `POST .../push/sns/message?_action=inbox_list|
inbox_detail|inbox_read|inbox_read_all|inbox_count`, signed like the `pending` poll. Pure.

The body is the poll's `{"mechanismUid", "jwt"}`; the JWT carries the poll's claims
(`mechanismUid`, `iat` within the allowed skew) plus `inbox`, the action it was signed for,
and the action's arguments (`page`, `size`, `onlyUnread`, `id`), so that nothing a device asks
for travels unsigned and a JWT signed for one action (or a poll) cannot be used for another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushgate.errors import BadDeviceMessage
from pushgate.protocol import device_messages as dm
from pushgate.protocol import jwt

LIST, DETAIL, READ, READ_ALL, COUNT = (
    "inbox_list",
    "inbox_detail",
    "inbox_read",
    "inbox_read_all",
    "inbox_count",
)
ACTIONS = frozenset({LIST, DETAIL, READ, READ_ALL, COUNT})
MAX_MESSAGE_ID = 64
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
MAX_PAGE = 10_000  # bounds the OFFSET a device can ask for


@dataclass(frozen=True, slots=True)
class InboxRequest:
    action: str
    page: int = 0  # PowerAuth's `page`, from 0, and `size` (list)
    size: int = DEFAULT_PAGE_SIZE
    only_unread: bool = False
    message_id: str | None = None  # detail and read


def _whole(claims: Mapping[str, Any], name: str, default: int) -> int:
    value = claims.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadDeviceMessage(dm.REFUSED, reason=f"{name} is not a whole number")
    return value


def verify_inbox(
    action: str, token: str, secret: bytes, mechanism_uid: str, now_ms: int, skew_seconds: int
) -> InboxRequest:
    """The verified request, or BadDeviceMessage (the reason for the log only)."""
    dm.verify_poll(token, secret, mechanism_uid, now_ms, skew_seconds)
    claims = jwt.verify(token, secret)  # verified just above; read for the arguments
    if claims.get("inbox") != action:
        raise BadDeviceMessage(dm.REFUSED, reason="the JWT was not signed for this action")
    if action == LIST:
        only_unread = claims.get("onlyUnread", False)
        if not isinstance(only_unread, bool):
            raise BadDeviceMessage(dm.REFUSED, reason="onlyUnread is not a boolean")
        page = _whole(claims, "page", 0)
        size = _whole(claims, "size", DEFAULT_PAGE_SIZE)
        if not 0 <= page <= MAX_PAGE or not 1 <= size <= MAX_PAGE_SIZE:
            raise BadDeviceMessage(dm.REFUSED, reason="page or size out of range")
        return InboxRequest(action, page, size, only_unread)
    if action in (DETAIL, READ):
        message_id = claims.get("id")
        if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID:
            raise BadDeviceMessage(dm.REFUSED, reason="id is not a message id")
        return InboxRequest(action, message_id=message_id)
    return InboxRequest(action)


def inbox_claims(
    mechanism_uid: str, action: str, now_ms: int, **arguments: object
) -> dict[str, object]:
    """What a device signs for an inbox action (the simulator's side)."""
    return {**dm.poll_claims(mechanism_uid, now_ms), "inbox": action, **arguments}
