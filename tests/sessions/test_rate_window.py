"""The Retry-After of a refused create (issue 7, anti-fatigue limits): never more than the
window, never 0, whatever the order in which concurrent creates read the clock."""

from __future__ import annotations

import pytest

from pushgate.accounts.model import RealmPolicy
from pushgate.errors import RateLimited
from pushgate.sessions.service import RATE_WINDOW_MS, _check_rate

NOW = 1_790_000_000_000


@pytest.mark.parametrize(
    ("nth_newest_ms", "seconds"),
    [
        (NOW - RATE_WINDOW_MS + 10_000, 10),  # leaves the window in 10 s
        (NOW - RATE_WINDOW_MS + 1, 1),
        (NOW, 60),
        # Committed by a create that read the clock after this one, while this one waited
        # for the user's lock (seen across two processes): still the window, not 61 s.
        (NOW + 250, 60),
        # The other way round: out of the window by the time it is checked.
        (NOW - RATE_WINDOW_MS, 1),
    ],
)
def test_retry_after_stays_within_the_window(nth_newest_ms: int, seconds: int) -> None:
    with pytest.raises(RateLimited) as refused:
        _check_rate(nth_newest_ms, RealmPolicy(), NOW)
    assert refused.value.retry_after == seconds


def test_no_nth_newest_session_is_no_refusal() -> None:
    _check_rate(None, RealmPolicy(), NOW)
