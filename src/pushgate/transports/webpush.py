"""Web Push for browser authenticators (RFC 8030 with RFC 8291 encryption and RFC 8292 VAPID;
push-transports.md §3).

A web device's push token is the JSON text of its PushSubscription (`webpush_wire`). The
message is the data map of every transport (`{"message": <JWT>, "messageId": <id>}` plus the
extras), encrypted for the subscription's keys, posted to its endpoint with `TTL` (what is left
of the session), `Urgency` and a per-session `Topic`.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass

import anyio
import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from pushgate.clock import Clock
from pushgate.settings import Settings
from pushgate.transports.base import (
    Delivered,
    PushRequest,
    Rejected,
    RetryAfter,
    SendResult,
    TokenGone,
    data_message,
    parse_retry_after,
)
from pushgate.transports.tls import client_ssl_context
from pushgate.transports.vapid import VapidKey
from pushgate.transports.webpush_wire import (
    MAX_PLAINTEXT_BYTES,
    VAPID_LIFETIME_SECONDS,
    encrypt,
    parse_subscription,
    topic,
    vapid_authorization,
    vapid_token,
)

log = logging.getLogger(__name__)

# A VAPID token is reused for its audience until an hour before its `exp` (one signature per
# push service per 11 hours, not per push); the cache is bounded as every cache is.
_TOKEN_MARGIN_SECONDS = 3600
_MAX_AUDIENCES = 64
_REASON_CHARS = 200


@dataclass(frozen=True, slots=True)
class WebPushConfig:
    key: VapidKey
    subject: str  # RFC 8292 §2.1: `mailto:` or `https:`; Apple's service refuses a token without
    ca_file: str = ""

    @classmethod
    def from_settings(cls, settings: Settings, key: VapidKey) -> WebPushConfig | None:
        """None while PUSHGATE_VAPID_SUBJECT is unset: web devices are then served by polling.
        The key itself is always there (`GET /v1/webpush/key` serves it)."""
        if not settings.vapid_subject:
            return None
        return cls(key=key, subject=settings.vapid_subject, ca_file=settings.tls_ca_file)


class WebPushTransport:
    def __init__(self, config: WebPushConfig, clock: Clock, timeout: float = 10.0) -> None:
        self._key = config.key.load()
        self._subject = config.subject
        self._clock = clock
        self._tokens: dict[str, tuple[str, int]] = {}  # audience → (token, exp)
        self._client = httpx.AsyncClient(
            verify=client_ssl_context(config.ca_file),
            timeout=httpx.Timeout(timeout),
            # Push services answer 201 or an error; a redirect would carry the VAPID token to
            # a place the subscription never named.
            follow_redirects=False,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )
        self._closed = False

    async def send(self, request: PushRequest) -> SendResult:
        if self._closed:
            raise RuntimeError("the Web Push transport is closed")
        now_ms = self._clock.now_ms()
        ttl = request.seconds_left(now_ms)
        if ttl <= 0:
            return Rejected("the session's deadline has passed")
        try:
            subscription = parse_subscription(request.token)
        except ValueError as exc:
            # Registration validates the same way: only a token stored before that got here.
            return TokenGone(f"not a Web Push subscription: {exc}")
        plaintext = json.dumps(
            data_message(request), separators=(",", ":"), ensure_ascii=False
        ).encode()
        if len(plaintext) > MAX_PLAINTEXT_BYTES:
            # Checked here so that the push service never answers 413 (§0.2).
            return Rejected(
                f"payload too large: {len(plaintext)} bytes, Web Push takes {MAX_PLAINTEXT_BYTES}"
            )
        body = encrypt(
            plaintext, subscription, salt=secrets.token_bytes(16), sender_key=_ephemeral_key()
        )
        headers = {
            "authorization": vapid_authorization(
                self._token(subscription.origin, now_ms // 1000), self._key
            ),
            "ttl": str(ttl),
            # A prompt must wake the device; a silent clean-up push need not.
            "urgency": "normal" if request.silent else "high",
            "topic": topic(request.collapse_id),
            "content-encoding": "aes128gcm",
            "content-type": "application/octet-stream",
        }
        try:
            response = await self._client.post(subscription.endpoint, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return RetryAfter(
                None, f"the push service did not answer in time ({type(exc).__name__})"
            )
        except httpx.TransportError as exc:
            return RetryAfter(None, f"push service connection failed: {type(exc).__name__}: {exc}")
        return self._result(response)

    def _token(self, audience: str, now_s: int) -> str:
        cached = self._tokens.get(audience)
        if cached is not None and cached[1] - now_s > _TOKEN_MARGIN_SECONDS:
            return cached[0]
        if len(self._tokens) >= _MAX_AUDIENCES:
            self._tokens.clear()
        token = vapid_token(self._key, audience, self._subject, now_s)
        self._tokens[audience] = (token, now_s + VAPID_LIFETIME_SECONDS)
        return token

    def _result(self, response: httpx.Response) -> SendResult:
        status = response.status_code
        if 200 <= status < 300:  # 201 Created; 202 with Prefer: respond-async (RFC 8030 §5)
            return Delivered(response.headers.get("location"))
        where = f"push service {status}{_excerpt(response)}"
        if status in (404, 410):  # the subscription expired or was withdrawn (§3)
            return TokenGone(where)
        if status == 429 or status >= 500:
            seconds = parse_retry_after(response.headers.get("retry-after"), self._clock.now_ms())
            return RetryAfter(seconds, where)
        if status in (401, 403):
            # A subscription made with another applicationServerKey, or a token the service
            # does not accept: the key file or the subject (PUSHGATE_VAPID_*) is the suspect.
            log.error("a push service refused our VAPID credentials: %s", where)
        return Rejected(where)

    async def aclose(self) -> None:
        self._closed = True
        with anyio.CancelScope(shield=True):
            await self._client.aclose()


def _ephemeral_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _excerpt(response: httpx.Response) -> str:
    """The start of the service's explanation, for the log: services put a reason there."""
    text = response.content[:_REASON_CHARS].decode("utf-8", "replace").strip()
    return f": {' '.join(text.split())}" if text else ""
