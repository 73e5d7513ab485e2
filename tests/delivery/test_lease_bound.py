"""`PUSHGATE_OUTBOX_LEASE_SECONDS` is at most 30 (issue 8): a push in flight when its process
dies is sent again within 30 s of a restart, so a longer lease is refused with one line."""

from __future__ import annotations

import pytest

from pushgate.errors import ConfigError
from pushgate.settings import load_settings


def test_a_lease_of_30_seconds_or_less_is_taken() -> None:
    assert load_settings({"PUSHGATE_OUTBOX_LEASE_SECONDS": "30"}).outbox_lease_seconds == 30.0
    assert load_settings({"PUSHGATE_OUTBOX_LEASE_SECONDS": "0.5"}).outbox_lease_seconds == 0.5


@pytest.mark.parametrize("value", ["30.001", "45", "3600"])
def test_a_longer_lease_is_refused_in_one_line(value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"PUSHGATE_OUTBOX_LEASE_SECONDS": value})
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(
        "PUSHGATE_OUTBOX_LEASE_SECONDS must be a number above 0 and at most 30"
    )
    assert repr(value) in message
