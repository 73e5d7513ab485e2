"""Fixtures of the outbox tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.wiring import build_services
from tests.outbox.support import record_changes
from tests.support import FakeClock


@pytest.fixture
async def followed(
    settings: Settings, clock: FakeClock, services: Services
) -> AsyncIterator[Services]:
    """Services (on the emptied database) whose session changes write `KIND` rows."""
    built = build_services(settings, clock, followers=[record_changes])
    try:
        yield built
    finally:
        await built.store.aclose()
