"""Fixtures of the webhook tests: a clock that starts at the wall clock's time (receivers check
`webhook-timestamp` against their own clock), services whose snapshot of subscriptions is
loaded."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from pushgate.services import Services
from tests.support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(int(time.time() * 1000))


@pytest.fixture
async def hooked(services: Services) -> AsyncIterator[Services]:
    """The services with their webhook snapshot loaded, as the background runtime does."""
    await services.webhooks.refresh()
    try:
        yield services
    finally:
        await services.webhooks.sender.aclose()
