"""Fixtures of the operations tests: the API driver of tests/api over the shared app, and the
CLI tests' own fresh database and logging restore (the commands configure logging)."""

from __future__ import annotations

import httpx
import pytest

from pushgate.services import Services
from tests.api.helpers import Api
from tests.cli.conftest import _restore_logging, fresh_database_url

__all__ = ["_restore_logging", "fresh_database_url"]  # fixtures, shared with tests/cli


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)
