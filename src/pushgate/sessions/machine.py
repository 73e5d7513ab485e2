"""The push-session state machine as one table (DESIGN.md; STYLE.md §2). Pure.

Terminal states are final: every event from a terminal state is illegal, and the store's
compare-and-set makes sure only one terminal transition ever commits.
"""

from __future__ import annotations

from enum import StrEnum

from pushgate.errors import Conflict
from pushgate.sessions.model import SessionStatus


class Event(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    CANCEL = "cancel"
    EXPIRE = "expire"
    FAIL = "fail"


TRANSITIONS: dict[tuple[SessionStatus, Event], SessionStatus] = {
    (SessionStatus.PENDING, Event.APPROVE): SessionStatus.APPROVED,
    (SessionStatus.PENDING, Event.DENY): SessionStatus.DENIED,
    (SessionStatus.PENDING, Event.CANCEL): SessionStatus.CANCELED,
    (SessionStatus.PENDING, Event.EXPIRE): SessionStatus.EXPIRED,
    (SessionStatus.PENDING, Event.FAIL): SessionStatus.FAILED,
}


def next_status(current: SessionStatus, event: Event) -> SessionStatus:
    try:
        return TRANSITIONS[(current, event)]
    except KeyError:
        raise Conflict(
            f"session is already {current.wire}",
            reason=f"illegal transition {current} --{event}-->",
        ) from None
