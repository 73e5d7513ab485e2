"""SNS platform endpoints made at registration and refresh, as AM does (issue 8), against moto's
server on loopback: the endpoint ARN becomes the device's push token and sessions are
published to it; SNS being unreachable does not fail the registration."""

# The SNS fixtures are imported here, so their names come back as parameters.
# ruff: noqa: F811

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from pushgate.api.app import create_app
from pushgate.settings import Settings
from pushgate.simulator import SimulatedDevice, new_device, refresh_body, registration_body
from pushgate.wiring import build_services
from tests.api.helpers import REFUSED, Api
from tests.support import FakeClock, empty_database
from tests.transports.test_sns import (  # noqa: F401 - module fixtures: moto's server, the apps
    REGION,
    _client,
    app_token,
    applications,
    moto_url,
    sent_to,
)


def sns_settings(settings: Settings, url: str, applications: dict[str, str]) -> Settings:
    return settings.model_copy(
        update={
            "sns_region": REGION,
            "sns_access_key_id": "testing",
            "sns_secret_access_key": "testing",
            "sns_endpoint_url": url,
            "sns_apple_arn": applications["apple"],
            "sns_google_arn": applications["google"],
        }
    )


async def _api(settings: Settings, clock: FakeClock) -> AsyncIterator[Api]:
    built = build_services(settings, clock)
    await empty_database(built)
    app = create_app(built, close_store=False)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Api(http, built)
    finally:
        await built.pushes.aclose()
        await built.store.aclose()


@pytest.fixture
async def api(
    settings: Settings, clock: FakeClock, moto_url: str, applications: dict[str, str]
) -> AsyncIterator[Api]:
    async for api in _api(sns_settings(settings, moto_url, applications), clock):
        yield api


def _phone(kind: str, token: str) -> SimulatedDevice:
    return dataclasses.replace(
        new_device(),
        device_id=token,
        device_type="ios" if kind == "apns" else "android",
        communication_type=kind,
    )


@pytest.mark.parametrize(("kind", "app"), [("gcm", "google"), ("apns", "apple")])
async def test_registration_stores_the_endpoint_and_sessions_are_published_to_it(
    api: Api, applications: dict[str, str], moto_url: str, kind: str, app: str
) -> None:
    await api.user("/", "alice")
    key = await api.key()
    token = app_token()
    phone = await api.register("/", "alice", device=_phone(kind, token))

    arn = (await api.device_row(phone.mechanism.mechanism_uid))["push_token"]
    assert arn.startswith(applications[app].replace(":app/", ":endpoint/"))
    attributes = _client(moto_url).get_endpoint_attributes(EndpointArn=arn)["Attributes"]
    assert attributes == {"Token": token, "Enabled": "true"}

    session = await api.create_session(key, "alice")
    assert await api.services.outbox_worker.run_once() >= 1
    [message] = [m for m in sent_to(arn) if "APNS" in m]
    platform = json.loads(message["GCM"])["data"] if kind == "gcm" else json.loads(message["APNS"])
    assert platform["messageType"] == "mtoken.operationInit"
    assert platform["operationId"] == session["id"]


async def test_a_refresh_re_enables_the_endpoint_and_moves_it_to_the_new_token(
    api: Api, moto_url: str
) -> None:
    await api.user("/", "alice")
    phone = await api.register("/", "alice", device=_phone("gcm", app_token()))
    old_arn = (await api.device_row(phone.mechanism.mechanism_uid))["push_token"]
    _client(moto_url).set_endpoint_attributes(EndpointArn=old_arn, Attributes={"Enabled": "false"})

    new_token = app_token()
    moved = dataclasses.replace(phone.device, device_id=new_token)
    body = refresh_body(phone.mechanism, moved)
    response = await api.post(phone.refresh_url, body)
    assert response.status_code == 200, response.text

    arn = (await api.device_row(phone.mechanism.mechanism_uid))["push_token"]
    attributes = _client(moto_url).get_endpoint_attributes(EndpointArn=arn)["Attributes"]
    assert attributes == {"Token": new_token, "Enabled": "true"}
    # The lost answer re-sent: the same refresh changes nothing and still gets its 200.
    again = await api.post(phone.refresh_url, body)
    assert again.status_code == 200, again.text


async def test_a_device_naming_an_endpoint_arn_as_its_token_is_refused(
    api: Api, applications: dict[str, str]
) -> None:
    await api.user("/", "alice")
    foreign = applications["google"].replace(":app/", ":endpoint/") + "/0123abcd"
    uri = await api.start("/", "alice")
    device = _phone("gcm", foreign)
    response = await api.post(uri.register_url, registration_body(uri, "uid-1", device))
    assert (response.status_code, response.json()) == (400, REFUSED)
    assert await api.count("devices") == 0


async def test_sns_unreachable_the_registration_succeeds_and_the_device_polls(
    settings: Settings,
    clock: FakeClock,
    applications: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on port 9 of loopback: every SNS call fails to connect.
    down = sns_settings(settings, "http://127.0.0.1:9", applications)
    async for api in _api(down, clock):
        await api.user("/", "alice")
        key = await api.key()
        token = app_token()
        with caplog.at_level(logging.WARNING, logger="pushgate.delivery"):
            phone = await api.register("/", "alice", device=_phone("gcm", token))
        assert (await api.device_row(phone.mechanism.mechanism_uid))["push_token"] == token
        assert any("SNS endpoint not made" in r.getMessage() for r in caplog.records)

        session = await api.create_session(key, "alice")
        assert await api.services.outbox_worker.run_once() == 0  # no push row: it polls
        [polled] = await api.pending(phone)
        assert polled.claims["u"] == phone.mechanism.mechanism_uid
        assert session["notificationCount"] == 1
