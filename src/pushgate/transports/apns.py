"""APNs provider API over HTTP/2 with token auth (push-transports.md §1; forgerock-push.md §5.2).

One ES256 provider token serves every send of the process and is replaced between 20 and 60
minutes of age: Apple refuses a token older than an hour (403 `ExpiredProviderToken`) and one
replaced more often than every 20 minutes (429 `TooManyProviderTokenUpdates`).
"""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushgate.clock import Clock
from pushgate.errors import ConfigError
from pushgate.settings import Settings
from pushgate.transports.base import (
    MAX_PAYLOAD_BYTES,
    Delivered,
    PushRequest,
    Rejected,
    RetryAfter,
    SendResult,
    TokenGone,
    apns_payload,
    parse_retry_after,
)
from pushgate.transports.tls import client_ssl_context

log = logging.getLogger(__name__)

SANDBOX_URL = "https://api.sandbox.push.apple.com"
TOKEN_MIN_AGE_SECONDS = 20 * 60
TOKEN_MAX_AGE_SECONDS = 60 * 60
# Replaced at 45 minutes: well clear of both of Apple's bounds, whatever the clock skew.
TOKEN_REFRESH_SECONDS = 45 * 60
# A device token is hex (32 bytes today; Apple says not to assume the length).
_DEVICE_TOKEN = re.compile(r"[0-9A-Fa-f]{16,400}")
_PROVIDER_TOKEN_REASONS = frozenset({"ExpiredProviderToken", "InvalidProviderToken"})
_TOKEN_GONE_REASONS = frozenset({"Unregistered", "ExpiredToken", "BadDeviceToken"})


@dataclass(frozen=True, slots=True)
class ApnsConfig:
    key_pem: bytes
    key_id: str
    team_id: str
    topic: str
    url: str
    ca_file: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> ApnsConfig | None:
        """None when APNs is not configured (settings.py checks the four come together)."""
        if not settings.apns_key_file:
            return None
        try:
            with open(settings.apns_key_file, "rb") as file:
                key_pem = file.read()
        except OSError as exc:
            raise ConfigError(
                f"PUSHGATE_APNS_KEY_FILE {settings.apns_key_file!r}: {exc.strerror}"
            ) from None
        return cls(
            key_pem=key_pem,
            key_id=settings.apns_key_id,
            team_id=settings.apns_team_id,
            topic=settings.apns_topic,
            url=settings.apns_url,
            ca_file=settings.tls_ca_file,
        )


def load_signing_key(key_pem: bytes) -> ec.EllipticCurvePrivateKey:
    """The .p8 key Apple hands out: a PKCS#8 PEM P-256 key (only ES256 is accepted)."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ConfigError("PUSHGATE_APNS_KEY_FILE must hold an APNs .p8 key (PEM, P-256)")
    return key


class ProviderTokens:
    """The process's one provider token, minted from the clock, shared by every send."""

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        key_id: str,
        team_id: str,
        clock: Clock,
        refresh_seconds: int = TOKEN_REFRESH_SECONDS,
    ) -> None:
        if not TOKEN_MIN_AGE_SECONDS <= refresh_seconds < TOKEN_MAX_AGE_SECONDS:
            raise ValueError("a provider token is replaced between 20 and 60 minutes of age")
        self._key = key
        self._key_id = key_id
        self._team_id = team_id
        self._clock = clock
        self._refresh_seconds = refresh_seconds
        self._token = ""
        self._issued_at = 0
        self._minted_on_refusal = False

    def current(self) -> str:
        if not self._token or self._age() >= self._refresh_seconds:
            self._mint(on_refusal=False)
        return self._token

    def rejected(self, token: str) -> str:
        """APNs refused `token` (expired or invalid): a new one, unless another send has
        already replaced it (one refusal seen by many sends mints one token), or unless the
        current token is itself a young replacement: a key APNs keeps refusing must not
        turn into a token per send and a 429 TooManyProviderTokenUpdates."""
        churn = self._minted_on_refusal and self._age() < TOKEN_MIN_AGE_SECONDS
        if token == self._token and not churn:
            self._mint(on_refusal=True)
        return self._token

    def _age(self) -> int:
        return self._clock.now_ms() // 1000 - self._issued_at

    def _mint(self, on_refusal: bool) -> None:
        self._minted_on_refusal = on_refusal
        self._issued_at = self._clock.now_ms() // 1000
        self._token = jwt.encode(
            {"iss": self._team_id, "iat": self._issued_at},
            self._key,
            algorithm="ES256",
            headers={"kid": self._key_id},
        )


class _Connection:
    """One HTTP/2 connection pool; retired after a transport failure and closed when idle.

    httpx's transport, not its client: a push needs none of the client's cookies, redirects,
    auth or default headers, which cost about a fifth of a send (docs/PERFORMANCE.md)."""

    def __init__(self, transport: httpx.AsyncHTTPTransport) -> None:
        self.transport = transport
        self.in_flight = 0
        self.retired = False


class ApnsTransport:
    def __init__(
        self,
        config: ApnsConfig,
        clock: Clock,
        timeout: float = 10.0,
    ) -> None:
        self._config = config
        self._clock = clock
        self._tokens = ProviderTokens(
            load_signing_key(config.key_pem), config.key_id, config.team_id, clock
        )
        self._ssl = client_ssl_context(config.ca_file)
        self._timeouts = httpx.Timeout(timeout).as_dict()
        self._base = config.url.rstrip("/")
        self._proxy = _environment_proxy(self._base)
        self._sandbox = "sandbox" in self._base or "development" in self._base
        self._connection = self._connect()
        self._closed = False

    def _connect(self) -> _Connection:
        return _Connection(
            httpx.AsyncHTTPTransport(
                http1=False,
                http2=True,
                verify=self._ssl,
                # Keep the connection: APNs treats rapid connect/disconnect as an attack (§1).
                limits=httpx.Limits(max_connections=4, keepalive_expiry=None),
                proxy=self._proxy,
            )
        )

    async def send(self, request: PushRequest) -> SendResult:
        if self._closed:
            raise RuntimeError("the APNs transport is closed")
        now_ms = self._clock.now_ms()
        if request.expires_ms <= now_ms:
            return Rejected("the session's deadline has passed")
        if not _DEVICE_TOKEN.fullmatch(request.token):
            return TokenGone("not an APNs device token (hex)")
        body = json.dumps(apns_payload(request), separators=(",", ":"), ensure_ascii=False)
        encoded = body.encode()
        if len(encoded) > MAX_PAYLOAD_BYTES:
            return Rejected(f"payload too large: {len(encoded)} bytes, APNs takes 4096")
        token = self._tokens.current()
        response = await self._post(request, encoded, token)
        if isinstance(response, RetryAfter):
            return response
        reason = _reason(response)
        if response.status_code == 403 and reason in _PROVIDER_TOKEN_REASONS:
            # Once: a second refusal of a fresh token is a configuration problem.
            fresh = self._tokens.rejected(token)
            if fresh != token:
                log.warning("APNs refused the provider token (%s); retrying with a new one", reason)
                response = await self._post(request, encoded, fresh)
                if isinstance(response, RetryAfter):
                    return response
                reason = _reason(response)
        return self._result(request, response, reason)

    async def _post(
        self, request: PushRequest, body: bytes, token: str
    ) -> httpx.Response | RetryAfter:
        connection = self._connection
        connection.in_flight += 1
        post = httpx.Request(
            "POST",
            f"{self._base}/3/device/{request.token}",
            content=body,
            headers=self._headers(request, token),
            extensions={"timeout": self._timeouts},
        )
        try:
            response = await connection.transport.handle_async_request(post)
            try:
                await response.aread()
            finally:
                await response.aclose()
            if response.status_code >= 500:
                self._retire(connection)  # §1: retry 500/503 on a fresh connection
            return response
        except httpx.TimeoutException as exc:
            self._retire(connection)
            return RetryAfter(None, f"APNs did not answer in time ({type(exc).__name__})")
        except httpx.TransportError as exc:
            # GOAWAY, a reset, a refused connection: the next send opens a fresh connection.
            self._retire(connection)
            return RetryAfter(None, f"APNs connection failed: {type(exc).__name__}: {exc}")
        finally:
            connection.in_flight -= 1
            if connection.retired and connection.in_flight == 0:
                await _close_shielded(connection.transport)

    def _headers(self, request: PushRequest, token: str) -> dict[str, str]:
        silent = request.silent
        return {
            "authorization": f"bearer {token}",
            "apns-topic": self._config.topic,
            # A background push must be priority 5 with only content-available (§1).
            "apns-push-type": "background" if silent else "alert",
            "apns-priority": "5" if silent else "10",
            "apns-expiration": str(request.expires_ms // 1000),
            "apns-collapse-id": request.collapse_id,
            "apns-id": str(request.request_id),
            "content-type": "application/json",
        }

    def _result(self, request: PushRequest, response: httpx.Response, reason: str) -> SendResult:
        status = response.status_code
        if status == 200:
            return Delivered(response.headers.get("apns-id"))
        where = f"APNs {status} {reason or '(no reason)'}"
        if status == 410 or reason in _TOKEN_GONE_REASONS:
            if reason == "BadDeviceToken":
                log.warning(
                    "APNs says BadDeviceToken for token %s…: a token of the %s environment "
                    "sent to %s? (PUSHGATE_APNS_URL)",
                    request.token[:8],
                    "production" if self._sandbox else "sandbox",
                    self._base,
                )
            return TokenGone(where, since_ms=_timestamp(response))
        if status == 429 or status >= 500:
            return RetryAfter(
                parse_retry_after(response.headers.get("retry-after"), self._clock.now_ms()),
                where,
            )
        if status == 403:
            log.error("APNs refused our credentials: %s (check PUSHGATE_APNS_*)", where)
        return Rejected(where)

    def _retire(self, connection: _Connection) -> None:
        if connection is self._connection and not self._closed:
            connection.retired = True
            self._connection = self._connect()

    async def aclose(self) -> None:
        self._closed = True
        self._connection.retired = True
        await _close_shielded(self._connection.transport)


async def _close_shielded(transport: httpx.AsyncHTTPTransport) -> None:
    with anyio.CancelScope(shield=True):
        await transport.aclose()


def _environment_proxy(url: str) -> str | None:
    """The proxy the standard variables name for `url` (`HTTPS_PROXY`, `ALL_PROXY`, lower or
    upper case), unless `NO_PROXY` exempts its host: what httpx's client would pick."""
    proxies = urllib.request.getproxies_environment()
    parts = urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    return proxies.get(parts.scheme) or proxies.get("all") or None


def _reason(response: httpx.Response) -> str:
    if response.status_code == 200:
        return ""
    try:
        document = json.loads(response.content)
    except ValueError:
        return ""
    reason = document.get("reason") if isinstance(document, dict) else None
    return reason if isinstance(reason, str) else ""


def _timestamp(response: httpx.Response) -> int | None:
    try:
        document = json.loads(response.content)
    except ValueError:
        return None
    value = document.get("timestamp") if isinstance(document, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
