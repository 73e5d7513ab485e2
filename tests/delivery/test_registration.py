"""A Web Push device registers as a browser (issue 8): `deviceType` web, its PushSubscription's
JSON as `deviceId`; anything else is refused at registration and at refresh, writing nothing."""

from __future__ import annotations

import dataclasses
import json
import logging

import anyio
import pytest

from pushgate.background import Background
from pushgate.settings import Settings
from pushgate.simulator import refresh_body, registration_body
from pushgate.wiring import build_services
from tests.api.helpers import REFUSED, Api
from tests.delivery.conftest import Providers, register
from tests.support import FakeClock


def _subscription(providers: Providers, **changes: object) -> str:
    document = json.loads(providers.webpush.browser("web").subscription(providers.webpush.base_url))
    document.update(changes)
    return json.dumps(document)


@pytest.mark.parametrize(
    ("device_type", "change"),
    [
        ("android", {}),  # a subscription, but not from a browser
        ("web", {"endpoint": "http://127.0.0.1/push/web"}),  # no TLS
        ("web", {"keys": {"p256dh": "AAAA", "auth": "AAAA"}}),
    ],
)
async def test_a_webpush_device_that_is_no_browser_subscription_is_refused(
    api: Api, providers: Providers, device_type: str, change: dict[str, object]
) -> None:
    await api.user("/", "alice")
    device = dataclasses.replace(
        providers.device("webpush"),
        device_id=_subscription(providers, **change),
        device_type=device_type,
    )
    uri = await api.start("/", "alice")
    before = await api.count("devices")

    response = await api.post(uri.register_url, registration_body(uri, "uid-1", device))

    assert (response.status_code, response.json()) == (400, REFUSED)
    assert await api.count("devices") == before
    # The registration was not used up: the same QR code still works with a real subscription.
    good = providers.device("webpush", name="good")
    response = await api.post(uri.register_url, registration_body(uri, "uid-1", good))
    assert response.status_code == 200, response.text


async def test_a_refresh_to_a_bad_subscription_is_refused(api: Api, providers: Providers) -> None:
    await api.user("/", "alice")
    phone = await register(api, providers, "webpush")
    bad = dataclasses.replace(phone.device, device_id='{"endpoint": "https://x"}')

    response = await api.post(phone.refresh_url, refresh_body(phone.mechanism, bad))

    assert (response.status_code, response.json()) == (400, REFUSED)
    row = await api.device_row(phone.mechanism.mechanism_uid)
    assert row["push_token"] == phone.device.device_id


async def test_without_credentials_devices_are_polled_and_one_warning_says_so(
    settings: Settings, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    services = build_services(settings, clock)
    try:
        assert not services.pushes.available
        assert services.pushes.follower.available == frozenset()
        with caplog.at_level(logging.WARNING, logger="pushgate.delivery"):
            with anyio.move_on_after(0.2):
                await Background(services).run()
    finally:
        await services.store.aclose()
    warnings = [r for r in caplog.records if r.name == "pushgate.delivery"]
    assert len(warnings) == 1
    assert warnings[0].fields["missing"] == ["apns", "gcm", "webpush", "sns"]  # type: ignore[attr-defined]
