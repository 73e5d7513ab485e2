"""The `store` fixture of the store's contract tests: the adapter `database_url` names, on an
emptied database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pushgate.store.ports import Store
from tests.store.support import open_store
from tests.support import empty_database_at


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    await empty_database_at(database_url)
    opened = open_store(database_url)
    try:
        yield opened
    finally:
        await opened.aclose()
