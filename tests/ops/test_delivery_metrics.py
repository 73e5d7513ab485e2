"""`pushgate_deliveries_total{transport,result}` (issue 10): each send through a loopback
provider counted by what the provider answered (tests/delivery's providers and app)."""

# The delivery tests' fixtures are imported here, so their names come back as parameters.
# ruff: noqa: F401, F811

from __future__ import annotations

from tests.api.helpers import Api
from tests.delivery.conftest import (
    Providers,
    api,
    providers,
    push_service,
    push_settings,
    register,
    services,
    vapid,
)
from tests.ops.helpers import sample
from tests.transports.apns_server import Answer
from tests.transports.conftest import (
    apns_key,
    apns_key_file,
    apns_server,
    fcm_key,
    fcm_server,
    pki,
)


async def _deliveries(api: Api, transport: str, result: str) -> float | None:
    text = (await api.client.get("/metrics")).text
    return sample(text, "pushgate_deliveries_total", transport=transport, result=result)


async def test_each_send_is_counted_by_transport_and_result(api: Api, providers: Providers) -> None:
    await api.user("/", "alice")
    await api.allow_many_sessions()
    key = await api.key()
    await register(api, providers, "gcm", name="android")
    await register(api, providers, "apns", name="iphone")
    await api.create_session(key, "alice")
    assert await api.services.outbox_worker.run_once() == 2
    assert await _deliveries(api, "gcm", "delivered") == 1
    assert await _deliveries(api, "apns", "delivered") == 1

    providers.apns.script.append(Answer(410, "Unregistered", timestamp_ms=api.now_ms()))
    await api.create_session(key, "alice")
    assert await api.services.outbox_worker.run_once() == 2
    assert await _deliveries(api, "gcm", "delivered") == 2
    assert await _deliveries(api, "apns", "token_gone") == 1
    assert await _deliveries(api, "apns", "delivered") == 1
