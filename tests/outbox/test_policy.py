"""The retry policy (exponential backoff with full jitter, a floor, a cap and a limit) and the
bounds of an outbox message. Pure."""

from __future__ import annotations

import random

import pytest

from pushgate.outbox.model import MAX_KEY, OutboxMessage, RetryPolicy


def test_delays_grow_to_the_cap_and_never_drop_below_the_floor() -> None:
    policy = RetryPolicy(base_ms=1_000, cap_ms=60_000, max_attempts=10)
    rng = random.Random(7)
    for attempts in range(1, 12):
        ceiling = min(60_000, 1_000 * 2 ** (attempts - 1))
        delays = [policy.delay_ms(attempts, rng) for _ in range(500)]
        assert all(250 <= d <= max(250, ceiling) for d in delays), attempts
        if ceiling >= 8_000:  # spread over the whole window: jitter, not a fixed step
            assert max(delays) > ceiling * 0.9 and min(delays) < ceiling * 0.1


def test_the_limit() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.gives_up(n) for n in (1, 2, 3, 4)] == [False, False, True, True]


def test_a_message_fits_its_columns() -> None:
    assert OutboxMessage("push", "/", "k" * MAX_KEY).key == "k" * MAX_KEY
    for kind, key in (("", "k"), ("push", ""), ("push", "k" * (MAX_KEY + 1)), ("x" * 65, "k")):
        with pytest.raises(ValueError, match="outbox kind or key"):
            OutboxMessage(kind, "/", key)
