"""U+0000 in a device message is a refusal like any other, on both databases (PostgreSQL's
text cannot hold it, so it must never reach a query)."""

from __future__ import annotations

import httpx
import pytest

from pushgate.services import Services
from pushgate.simulator import new_device, new_mechanism_uid, registration_body
from tests.api.helpers import MALFORMED, REFUSED, Api, endpoint


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


async def test_nul_in_body_fields(api: Api) -> None:
    await api.user("/", "alice")
    phone = await api.register("/", "alice")
    before = await api.snapshot()
    for url, body in (
        (phone.pending_url, {"mechanismUid": "m\x00", "jwt": "x.y.z"}),
        (phone.refresh_url, {"mechanismUid": "m", "username": "alice\x00", "jwt": "x.y.z"}),
        (endpoint("/", "authenticate"), {"messageId": "AUTHENTICATE:\x00", "jwt": "x.y.z"}),
    ):
        reply = await api.post(url, body)
        assert (reply.status_code, reply.json()) == (400, MALFORMED), body
    assert await api.snapshot() == before


async def test_nul_in_signed_registration_claims(api: Api) -> None:
    await api.user("/", "alice")
    uri = await api.start("/", "alice")
    before = await api.snapshot()
    for device in (new_device("Pixel\x00"), new_device(device_id="token\x00")):
        body = registration_body(uri, new_mechanism_uid(), device)
        reply = await api.post(uri.register_url, body)
        assert (reply.status_code, reply.json()) == (400, REFUSED)
    assert await api.snapshot() == before
