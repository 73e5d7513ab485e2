"""Every (state, event) pair of the session machine (STYLE.md §2)."""

from __future__ import annotations

import itertools

import pytest

from pushgate.audit.model import AuditEntry
from pushgate.changes import Change
from pushgate.errors import Conflict
from pushgate.outbox.model import OutboxMessage
from pushgate.protocol.push_payload import PushType
from pushgate.sessions.machine import TRANSITIONS, Event, SessionChange, next_status, transition
from pushgate.sessions.model import Content, PushSession, SessionStatus

EXPECTED = {
    Event.APPROVE: SessionStatus.APPROVED,
    Event.DENY: SessionStatus.DENIED,
    Event.CANCEL: SessionStatus.CANCELED,
    Event.EXPIRE: SessionStatus.EXPIRED,
    Event.FAIL: SessionStatus.FAILED,
}


@pytest.mark.parametrize(("state", "event"), list(itertools.product(SessionStatus, Event)))
def test_every_pair(state: SessionStatus, event: Event) -> None:
    if state is SessionStatus.PENDING:
        assert next_status(state, event) is EXPECTED[event]
    else:
        with pytest.raises(Conflict):
            next_status(state, event)


def test_only_pending_has_transitions_and_terminal_states_are_final() -> None:
    assert {state for state, _ in TRANSITIONS} == {SessionStatus.PENDING}
    assert all(target.terminal for target in TRANSITIONS.values())


def test_wire_values_are_unifyid_status_enum() -> None:
    assert {s.wire for s in SessionStatus} == {
        "sent",
        "accepted",
        "rejected",
        "expired",
        "canceled",
        "error",
    }


def _session(status: SessionStatus = SessionStatus.PENDING) -> PushSession:
    return PushSession(
        id="s-1",
        realm="/alpha",
        username="alice",
        user_id="u-1",
        status=status,
        content=Content("Sign in"),
        push_type=PushType.DEFAULT,
        notification_count=1,
        detail=None,
        created_ms=1_000,
        expires_ms=61_000,
        updated_ms=1_000,
    )


def _one_row_per_change(change: Change) -> list[OutboxMessage]:
    assert isinstance(change, SessionChange)
    return [OutboxMessage("k", change.session.realm, f"{change.session.id}:{change.event}")]


def test_a_transition_is_a_value_with_its_audit_and_outbox_rows() -> None:
    before = _session()
    move = transition(
        before,
        Event.APPROVE,
        5_000,
        followers=[_one_row_per_change, _one_row_per_change],
        detail="from the train",
        message_id="AUTHENTICATE:x",
        audit_data={"device": "d-1"},
    )
    assert before.status is SessionStatus.PENDING  # nothing was changed in place
    assert move.status is SessionStatus.APPROVED
    assert (move.session.detail, move.session.updated_ms) == ("from the train", 5_000)
    assert move.before_deadline and move.message_id == "AUTHENTICATE:x"
    assert move.audit == AuditEntry(
        "/alpha", "session.answered", "s-1", 5_000, {"status": "accepted", "device": "d-1"}
    )
    assert [m.key for m in move.outbox] == ["s-1:approve", "s-1:approve"]


def test_past_its_deadline_only_expiry_moves_a_session() -> None:
    late = 61_000
    for event in (Event.APPROVE, Event.DENY, Event.CANCEL):
        with pytest.raises(Conflict):
            transition(_session(), event, late)
    move = transition(_session(), Event.EXPIRE, late)
    assert move.status is SessionStatus.EXPIRED and not move.before_deadline
    assert move.audit.event == "session.expired"
    with pytest.raises(Conflict):
        transition(_session(SessionStatus.CANCELED), Event.EXPIRE, late)
