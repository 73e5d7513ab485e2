"""The inbox's fixtures: the two faces over ASGI, and a phone's inbox through the simulator."""

from __future__ import annotations

import httpx
import pytest

from pushgate.services import Services
from pushgate.simulator import DeviceClient
from pushgate.simulator.inbox import DeviceInbox
from tests.api.helpers import Api, Phone

MESSAGES = "/v1/inbox/messages"


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


def inbox_of(api: Api, phone: Phone) -> DeviceInbox:
    """The phone's inbox, spoken to through the simulator over the same ASGI app."""
    client = DeviceClient(phone.device, http=api.client, clock=api.services.clock)
    return DeviceInbox(client, phone.mechanism)


async def post(api: Api, key: str, **fields: object) -> httpx.Response:
    body = {"user": "alice", "subject": "Hello", "summary": "A summary", "body": "Text", **fields}
    return await api.client.post(MESSAGES, json=body, headers={"X-API-Key": key})
