"""The history checker itself (security.md §9 F5): a sound history passes, and each broken
invariant is found, so the crash tests' silence means something."""

from __future__ import annotations

import httpx
import pytest

from pushgate.simulator.device import SimulatorError
from tests.crash.history import Event, History, Op, violations


def _history(*events: tuple[Op, int | None, str | None]) -> History:
    """Events of one session "s", one second apart, each answered before the next is sent."""
    history = History()
    for i, (op, status, seen) in enumerate(events):
        history.events.append(Event(op, "s", float(i), i + 0.5, status, seen))
    return history


SOUND = [
    (Op.CREATE, 201, "sent"),
    (Op.READ, 200, "sent"),
    (Op.APPROVE, 200, None),
    (Op.CANCEL, 409, None),  # too late: refused, and nothing changes
    (Op.READ, 200, "accepted"),
]


def test_a_sound_history_passes() -> None:
    assert violations(_history(*SOUND), crashes=False) == []
    assert violations(_history(*SOUND), crashes=False, webhooks={"s": ["accepted"]}) == []


def test_an_unanswered_or_failed_request_is_indeterminate() -> None:
    history = _history(
        (Op.CREATE, 201, "sent"),
        (Op.DENY, None, None),  # the server died: maybe committed
        (Op.CANCEL, 503, None),  # the database went away: maybe committed
        (Op.READ, 200, "rejected"),
    )
    assert violations(history, crashes=True) == []


@pytest.mark.parametrize(
    ("events", "crashes", "expected"),
    [
        ([(Op.CREATE, 201, "sent"), (Op.READ, 404, None)], False, "its creation got 201"),
        (
            [
                (Op.CREATE, 201, "sent"),
                (Op.APPROVE, 200, None),
                (Op.CANCEL, 200, "canceled"),
                (Op.READ, 200, "canceled"),
            ],
            False,
            "2 terminal operations succeeded",
        ),
        (
            [(Op.CREATE, 201, "sent"), (Op.APPROVE, 200, None), (Op.READ, 200, "sent")],
            False,
            "approve got 200, a later read shows sent",
        ),
        (
            [(Op.CREATE, 201, "sent"), (Op.READ, 200, "canceled"), (Op.READ, 200, "expired")],
            False,
            "seen in more than one terminal status",
        ),
        ([(Op.CREATE, 201, "sent")], False, "never read back"),
        ([(Op.READ, 500, None)], False, "HTTP 500, not 503"),
        ([(Op.READ, None, None)], False, "no answer, and no server was killed"),
    ],
)
def test_each_broken_invariant_is_found(
    events: list[tuple[Op, int | None, str | None]], crashes: bool, expected: str
) -> None:
    found = violations(_history(*events), crashes=crashes)
    assert any(expected in line for line in found), found


def test_webhooks_must_agree_with_the_history() -> None:
    history = _history(*SOUND)
    assert "no webhook announced it" in violations(history, crashes=False, webhooks={})[0]
    [found] = violations(history, crashes=False, webhooks={"s": ["accepted", "canceled"]})
    assert "webhooks announced ['accepted', 'canceled']" in found


async def test_recording_keeps_what_the_client_saw() -> None:
    history = History()
    async with history.call(Op.CANCEL, "s") as call:
        call.answered(httpx.Response(200, json={"id": "s", "status": "canceled"}))
    async with history.call(Op.APPROVE, "s"):
        raise SimulatorError("POST failed: ConnectError")  # no status: no answer
    async with history.call(Op.READ, "s"):
        raise httpx.ReadError("connection reset")
    assert [(e.op, e.status, e.seen) for e in history.events] == [
        (Op.CANCEL, 200, "canceled"),
        (Op.APPROVE, None, None),
        (Op.READ, None, None),
    ]
    assert all(e.ended >= e.started for e in history.events)
    with pytest.raises(ValueError, match="a bug"):  # anything else is the test's own error
        async with history.call(Op.READ, "s"):
            raise ValueError("a bug")
