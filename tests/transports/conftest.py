"""Fixtures for the APNs and FCM transports against their loopback servers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pushgate.settings import Settings
from pushgate.transports.apns import ApnsConfig, ApnsTransport
from pushgate.transports.fcm import FcmConfig, FcmTransport
from tests.support import FakeClock
from tests.transports.apns_server import ApnsServer, apns_serving
from tests.transports.certs import LoopbackPki, make_pki
from tests.transports.fcm_server import FcmServer, fcm_serving

KEY_ID = "ABC123DEFG"
TEAM_ID = "DEF123GHIJ"
TOPIC = "com.example.authenticator"
PROJECT_ID = "pushgate-test"
CLIENT_EMAIL = "pusher@pushgate-test.iam.gserviceaccount.com"


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LoopbackPki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def apns_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def apns_key_file(
    apns_key: ec.EllipticCurvePrivateKey, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("apns") / f"AuthKey_{KEY_ID}.p8"
    path.write_bytes(_pem(apns_key))
    return path


@pytest.fixture
async def apns_server(
    apns_key: ec.EllipticCurvePrivateKey, clock: FakeClock, pki: LoopbackPki
) -> AsyncIterator[ApnsServer]:
    server = ApnsServer(apns_key.public_key(), KEY_ID, TEAM_ID, TOPIC, clock)
    async with apns_serving(server, pki):
        yield server


def apns_settings(apns_key_file: Path, url: str, pki: LoopbackPki) -> Settings:
    return Settings(
        apns_key_file=str(apns_key_file),
        apns_key_id=KEY_ID,
        apns_team_id=TEAM_ID,
        apns_topic=TOPIC,
        apns_url=url,
        tls_ca_file=str(pki.ca_file),
    )


@pytest.fixture
async def apns(
    apns_server: ApnsServer, apns_key_file: Path, pki: LoopbackPki, clock: FakeClock
) -> AsyncIterator[ApnsTransport]:
    config = ApnsConfig.from_settings(apns_settings(apns_key_file, apns_server.url, pki))
    assert config is not None
    # A short timeout so a hung stream (H6) ends the test quickly; no test times it.
    transport = ApnsTransport(config, clock, timeout=1.0)
    yield transport
    await transport.aclose()


@pytest.fixture(scope="session")
def fcm_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def fcm_server(fcm_key: rsa.RSAPrivateKey, pki: LoopbackPki) -> AsyncIterator[FcmServer]:
    server = FcmServer(PROJECT_ID, CLIENT_EMAIL, fcm_key.public_key())
    async with fcm_serving(server, pki):
        yield server


def service_account_file(directory: Path, key: rsa.RSAPrivateKey, token_uri: str) -> Path:
    path = directory / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT_ID,
                "private_key_id": "0123456789abcdef",
                "private_key": _pem(key).decode(),
                "client_email": CLIENT_EMAIL,
                "client_id": "1234567890",
                "token_uri": token_uri,
            }
        )
    )
    return path


@pytest.fixture
def fcm_settings(
    fcm_server: FcmServer, fcm_key: rsa.RSAPrivateKey, pki: LoopbackPki, tmp_path: Path
) -> Settings:
    credentials = service_account_file(tmp_path, fcm_key, f"{fcm_server.base_url}/token")
    return Settings(
        fcm_credentials_file=str(credentials),
        fcm_url=fcm_server.base_url,
        tls_ca_file=str(pki.ca_file),
    )


@pytest.fixture
async def fcm(fcm_settings: Settings, clock: FakeClock) -> AsyncIterator[FcmTransport]:
    config = FcmConfig.from_settings(fcm_settings)
    assert config is not None
    transport = FcmTransport(config, clock, timeout=5.0)
    yield transport
    await transport.aclose()
