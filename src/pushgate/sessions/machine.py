"""The push-session state machine as one table, and its transitions as values (DESIGN.md;
STYLE.md §2, §3). Pure.

Terminal states are final: every event from a terminal state is illegal. `transition` does not
change anything: it returns what the change means (new status, audit entry, outbox rows), and
the store commits all of it with one compare-and-set, so only one terminal transition of a
session ever commits and a loser writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from pushgate.audit.model import AuditEntry, Origin
from pushgate.changes import Follower, SessionChange, follow
from pushgate.errors import Conflict
from pushgate.outbox.model import OutboxMessage
from pushgate.sessions.model import PushSession, SessionStatus

# SessionChange, Follower and follow live in `pushgate.changes`; the session code names them here.
__all__ = [
    "AUDIT_EVENTS",
    "CREATED_EVENT",
    "TRANSITIONS",
    "Event",
    "Follower",
    "SessionChange",
    "Transition",
    "follow",
    "next_status",
    "transition",
]


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

# The audit event each transition writes: the names the audit trail and its readers know.
AUDIT_EVENTS: dict[Event, str] = {
    Event.APPROVE: "session.answered",
    Event.DENY: "session.answered",
    Event.CANCEL: "session.canceled",
    Event.EXPIRE: "session.expired",
    Event.FAIL: "session.failed",
}
CREATED_EVENT = "session.created"


def next_status(current: SessionStatus, event: Event) -> SessionStatus:
    try:
        return TRANSITIONS[(current, event)]
    except KeyError:
        raise Conflict(
            f"session is already {current.wire}",
            reason=f"illegal transition {current} --{event}-->",
        ) from None


@dataclass(frozen=True, slots=True)
class Transition:
    """One terminal move of one session, as the store must commit it.

    The store applies it only if the session is still PENDING (and, with `before_deadline`,
    not past its deadline); with `message_id`, only if that notification is still unanswered.
    Then, in the same commit: the audit entry, the outbox rows, and the announcement to other
    processes.
    """

    session: PushSession  # the session after the move
    event: Event
    audit: AuditEntry
    before_deadline: bool = True
    message_id: str | None = None  # the notification a device answered
    outbox: tuple[OutboxMessage, ...] = field(default=())

    @property
    def status(self) -> SessionStatus:
        return self.session.status


def transition(
    session: PushSession,
    event: Event,
    now_ms: int,
    *,
    followers: Sequence[Follower] = (),
    detail: str | None = None,
    deny_reason: str | None = None,
    message_id: str | None = None,
    audit_data: Mapping[str, object] | None = None,
    origin: Origin | None = None,
) -> Transition:
    """The move `event` makes from the session as read at `now_ms`; Conflict if illegal."""
    # Past its deadline a pending session reads as expired, so only expiry may still move it.
    current = session.status if event is Event.EXPIRE else session.status_at(now_ms)
    status = next_status(current, event)
    after = replace(
        session,
        status=status,
        detail=detail if detail is not None else session.detail,
        deny_reason=deny_reason if deny_reason is not None else session.deny_reason,
        updated_ms=now_ms,
    )
    data = {"status": status.wire, **(audit_data or {})}
    return Transition(
        session=after,
        event=event,
        audit=AuditEntry(session.realm, AUDIT_EVENTS[event], session.id, now_ms, data).by(origin),
        before_deadline=event is not Event.EXPIRE,
        message_id=message_id,
        outbox=follow(SessionChange(after, event, message_id=message_id), followers),
    )
