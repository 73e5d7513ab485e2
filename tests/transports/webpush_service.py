"""A loopback Web Push service over TLS (RFC 8030): it checks the VAPID token against the key in
the request (and the server's key), decrypts the aes128gcm body with the subscription's private
key and auth secret (RFC 8291, written here from the RFC, independently of pushgate's code), and
answers 201, or the status a test asks for per subscription."""

from __future__ import annotations

import base64
import json
import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import FakeClock
from tests.transports.certs import LoopbackPki
from tests.transports.loopback import tls_serving


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Browser:
    """A browser's half of a subscription: its key pair and auth secret."""

    name: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def subscription(self, base_url: str) -> str:
        """The JSON of `PushSubscription.toJSON()`, the device's push token."""
        keys = {"p256dh": b64url(self.p256dh), "auth": b64url(self.auth)}
        endpoint = f"{base_url}/push/{self.name}"
        return json.dumps({"endpoint": endpoint, "expirationTime": None, "keys": keys})


def decrypt(body: bytes, browser: Browser) -> bytes:
    """RFC 8291 §3.4 on the receiving side; raises on any mismatch."""
    salt, record_size, id_length = body[:16], *struct.unpack("!IB", body[16:21])
    sender = body[21 : 21 + id_length]
    ciphertext = body[21 + id_length :]
    assert record_size == 4096 and id_length == 65, (record_size, id_length)
    assert len(body) <= 4096, "one record of at most 4096 bytes"
    shared = browser.key.exchange(
        ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender)
    )
    ikm = HKDF(
        hashes.SHA256(), 32, browser.auth, b"WebPush: info\x00" + browser.p256dh + sender
    ).derive(shared)
    cek = HKDF(hashes.SHA256(), 16, salt, b"Content-Encoding: aes128gcm\x00").derive(ikm)
    nonce = HKDF(hashes.SHA256(), 12, salt, b"Content-Encoding: nonce\x00").derive(ikm)
    padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
    content = padded.rstrip(b"\x00")
    assert content.endswith(b"\x02"), "the last record ends with the 0x02 delimiter"
    return content[:-1]


@dataclass
class Received:
    browser: str
    headers: dict[str, str]
    body: bytes
    plaintext: bytes
    vapid_claims: dict[str, object]


@dataclass
class PushService:
    server_key: ec.EllipticCurvePublicKey  # the VAPID key subscriptions were made with
    subject: str
    clock: FakeClock
    port: int = 0
    browsers: dict[str, Browser] = field(default_factory=dict)
    # browser name → (status, extra headers) to answer instead of 201
    answers: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def browser(self, name: str) -> Browser:
        self.browsers[name] = Browser(name)
        return self.browsers[name]

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/push/{name}", self._push, methods=["POST"])])

    async def _push(self, request: Request) -> Response:
        name = request.path_params["name"]
        browser = self.browsers.get(name)
        if browser is None:
            return Response("no such subscription", 404)
        claims = self._check_vapid(request.headers.get("authorization", ""))
        if isinstance(claims, str):
            self.refused.append(claims)
            return Response(claims, 403)
        for header in ("ttl", "urgency", "topic"):
            if header not in request.headers:
                self.refused.append(f"no {header}")
                return Response(f"missing {header}", 400)
        if request.headers.get("content-encoding") != "aes128gcm":
            self.refused.append("content-encoding")
            return Response("unsupported content-encoding", 415)
        body = await request.body()
        plaintext = decrypt(body, browser)  # an exception here is a 500 and fails the test
        self.received.append(Received(name, dict(request.headers), body, plaintext, claims))
        status, headers = self.answers.get(name, (201, {}))
        if status == 201:
            headers = {"location": f"{self.base_url}/message/{len(self.received)}"}
        return Response(b"", status, headers=headers)

    def _check_vapid(self, authorization: str) -> dict[str, object] | str:
        scheme, _, parameters = authorization.partition(" ")
        if scheme != "vapid":
            return f"scheme {scheme!r}"
        values = dict(part.strip().split("=", 1) for part in parameters.split(","))
        if set(values) != {"t", "k"}:
            return f"parameters {sorted(values)}"
        key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b64url_decode(values["k"])
        )
        if key.public_numbers() != self.server_key.public_numbers():
            return "k is not the key the subscription was made with"
        header = jwt.get_unverified_header(values["t"])
        if header.get("alg") != "ES256":
            return f"alg {header.get('alg')}"
        try:
            # exp is checked against the test's clock below, not the wall clock.
            claims: dict[str, object] = jwt.decode(
                values["t"],
                key,
                algorithms=["ES256"],
                audience=self.base_url,
                options={"verify_exp": False, "require": ["aud", "exp", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            return f"token: {exc}"
        exp = claims["exp"]
        now = self.clock.now_ms() // 1000
        if not isinstance(exp, int) or not now < exp <= now + 24 * 3600:
            return f"exp {exp} is not within 24 hours of {now}"
        if claims["sub"] != self.subject:
            return f"sub {claims['sub']!r}"
        return claims


@asynccontextmanager
async def webpush_serving(service: PushService, pki: LoopbackPki) -> AsyncIterator[PushService]:
    async with tls_serving(service.app(), pki) as port:
        service.port = port
        yield service
