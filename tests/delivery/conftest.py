"""Services with every push provider configured against its loopback server (tests/transports/):
APNs over HTTP/2, FCM v1 with its OAuth endpoint, a Web Push service that decrypts."""

# The transports' fixtures are imported here, so their names come back as parameters.
# ruff: noqa: F811

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pushgate.api.app import create_app
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.simulator import SimulatedDevice, new_device
from pushgate.transports.vapid import VapidKey
from pushgate.wiring import build_services
from tests.api.helpers import Api, Phone
from tests.support import FakeClock, empty_database
from tests.transports.apns_server import ApnsServer
from tests.transports.certs import LoopbackPki
from tests.transports.conftest import (  # noqa: F401 - fixtures, shared with the transports' tests
    KEY_ID,
    TEAM_ID,
    TOPIC,
    apns_key,
    apns_key_file,
    apns_server,
    fcm_key,
    fcm_server,
    pki,
    service_account_file,
)
from tests.transports.fcm_server import FcmServer
from tests.transports.webpush_service import PushService, webpush_serving

SUBJECT = "mailto:ops@example.com"


@pytest.fixture
def vapid(tmp_path: Path) -> VapidKey:
    return VapidKey(tmp_path / "vapid.pem")


@pytest.fixture
async def push_service(
    vapid: VapidKey, clock: FakeClock, pki: LoopbackPki
) -> AsyncIterator[PushService]:
    service = PushService(vapid.load().public_key(), SUBJECT, clock)
    async with webpush_serving(service, pki) as serving:
        yield serving


@pytest.fixture
def push_settings(
    settings: Settings,
    tmp_path: Path,
    pki: LoopbackPki,
    apns_server: ApnsServer,
    apns_key_file: Path,
    fcm_server: FcmServer,
    fcm_key: rsa.RSAPrivateKey,
    vapid: VapidKey,
    push_service: PushService,
) -> Settings:
    credentials = service_account_file(tmp_path, fcm_key, f"{fcm_server.base_url}/token")
    return settings.model_copy(
        update={
            "tls_ca_file": str(pki.ca_file),
            "apns_key_file": str(apns_key_file),
            "apns_key_id": KEY_ID,
            "apns_team_id": TEAM_ID,
            "apns_topic": TOPIC,
            "apns_url": apns_server.url,
            "fcm_credentials_file": str(credentials),
            "fcm_url": fcm_server.base_url,
            "vapid_private_key_file": str(vapid.path),
            "vapid_subject": SUBJECT,
        }
    )


@pytest.fixture
async def services(push_settings: Settings, clock: FakeClock) -> AsyncIterator[Services]:
    built = build_services(push_settings, clock)
    await empty_database(built)
    try:
        yield built
    finally:
        await built.pushes.aclose()
        await built.store.aclose()


@pytest.fixture
async def api(services: Services) -> AsyncIterator[Api]:
    app = create_app(services, close_store=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield Api(http, services)


@dataclasses.dataclass
class Providers:
    """The three loopback providers, and how each one's record gives back what we sent."""

    apns: ApnsServer
    fcm: FcmServer
    webpush: PushService

    def device(self, communication_type: str, name: str = "phone") -> SimulatedDevice:
        """A simulated device whose push token the provider of `communication_type` knows."""
        if communication_type == "apns":
            return dataclasses.replace(
                new_device(),
                device_id=name.encode().hex().ljust(64, "0"),
                device_type="ios",
                communication_type="apns",
            )
        if communication_type == "webpush":
            token = self.webpush.browser(name).subscription(self.webpush.base_url)
            return dataclasses.replace(
                new_device(), device_id=token, device_type="web", communication_type="webpush"
            )
        return dataclasses.replace(new_device(), device_id=f"fcm-token:{name}")

    def pushes(self, communication_type: str) -> list[dict[str, Any]]:
        """What each push to a device of `communication_type` carried, oldest first, as one
        shape: `message`, `messageId` (a prompt only) and the extras; `silent`, `headers`."""
        found: list[dict[str, Any]] = []
        if communication_type == "apns":
            for r in self.apns.received:
                payload = dict(r.payload)
                aps: dict[str, Any] = payload.pop("aps")  # type: ignore[assignment]
                if "data" in aps:
                    payload.update(message=aps["data"], messageId=aps["messageId"])
                silent = r.headers["apns-push-type"] == "background"
                found.append({**payload, "silent": silent, "headers": r.headers, "aps": aps})
        elif communication_type == "webpush":
            for w in self.webpush.received:
                data = json.loads(w.plaintext)
                silent = w.headers["urgency"] == "normal"
                found.append({**data, "silent": silent, "headers": w.headers})
        else:
            for m in self.fcm.messages:
                silent = m["android"]["priority"] == "NORMAL"
                found.append({**m["data"], "silent": silent, "android": m["android"]})
        return found


@pytest.fixture
def providers(
    apns_server: ApnsServer, fcm_server: FcmServer, push_service: PushService
) -> Providers:
    return Providers(apns_server, fcm_server, push_service)


async def register(api: Api, providers: Providers, kind: str, name: str = "phone") -> Phone:
    return await api.register("/", "alice", device=providers.device(kind, name))
