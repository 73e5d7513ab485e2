"""Every (state, event) pair of the session machine (STYLE.md §2)."""

from __future__ import annotations

import itertools

import pytest

from pushgate.errors import Conflict
from pushgate.sessions.machine import TRANSITIONS, Event, next_status
from pushgate.sessions.model import SessionStatus

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
