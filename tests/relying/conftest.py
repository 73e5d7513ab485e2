from __future__ import annotations

import httpx
import pytest

from pushgate.services import Services
from tests.api.helpers import Api


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)
