"""The outage log's arithmetic, on a clock the test moves: one line per outage, a tally of the
failures it did not log, a line when storage is back (issue #6)."""

from __future__ import annotations

import logging

import pytest

from pushgate.api.outage import OutageLog
from pushgate.errors import SecretKeyMismatch, Unavailable


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Monotonic:
    return Monotonic()


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "pushgate.api"]


def test_one_line_per_window_and_a_tally(
    clock: Monotonic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pushgate.api")
    outage = OutageLog(window_seconds=60, now=clock)
    down = Unavailable("storage is unavailable", reason="connection refused")
    assert not outage.active
    for _ in range(5):
        outage.failed(down, "/v1/push/sessions")
        clock.now += 1
    assert outage.active
    assert _lines(caplog) == [(logging.ERROR, "storage is unavailable")]
    assert caplog.records[0].fields["reason"] == "connection refused"
    clock.now += 60
    outage.failed(down, "/v1/push/sessions")
    outage.failed(down, "/v1/push/sessions")
    assert _lines(caplog)[1:] == [(logging.ERROR, "storage is unavailable: 4 more requests failed")]
    outage.recovered()
    assert not outage.active
    assert _lines(caplog)[2:] == [
        (logging.WARNING, "storage is available again: 1 more requests failed")
    ]
    assert all(r.exc_info is None for r in caplog.records)


def test_recovery_is_quiet_when_nothing_failed(
    clock: Monotonic, caplog: pytest.LogCaptureFixture
) -> None:
    outage = OutageLog(now=clock)
    outage.recovered()
    assert _lines(caplog) == []
    outage.failed(Unavailable("storage is unavailable"), "/json/push/sns/message")
    outage.recovered()
    outage.recovered()
    assert [m for _, m in _lines(caplog)] == [
        "storage is unavailable",
        "storage is available again",
    ]


def test_a_new_outage_logs_again(clock: Monotonic, caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog(now=clock)
    outage.failed(Unavailable("storage is unavailable"), "/v1/push/sessions")
    outage.recovered()
    clock.now += 1
    outage.failed(SecretKeyMismatch("secret key mismatch"), "/json/push/sns/message")
    messages = [m for level, m in _lines(caplog) if level == logging.ERROR]
    assert messages == [
        "storage is unavailable",
        "sealed device secrets do not open under the configured secret key",
    ]
