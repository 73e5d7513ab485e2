"""FCM HTTP v1 with service-account OAuth tokens (push-transports.md §2; forgerock-push.md §5.2).

google-auth signs the service account's JWT assertion and exchanges it at the key file's
`token_uri`. Its refresh is blocking, so it runs in a worker thread, one at a time, and the
access token is kept until shortly before it expires: one token request per expiry window.
Sends go through `pushgate.poster` (keep-alive HTTP/1.1, which FCM v1 serves): httpx cost
half a millisecond of CPU per send, half of a push's whole budget (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import google.auth.exceptions
import google.auth.transport
import httpx
from google.auth import _helpers as google_helpers
from google.oauth2 import service_account

from pushgate.clock import Clock
from pushgate.errors import ConfigError
from pushgate.poster import Posted, Poster, PostError
from pushgate.settings import Settings
from pushgate.transports.base import (
    MAX_PAYLOAD_BYTES,
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

log = logging.getLogger(__name__)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# Refresh this long before the token's expiry, so a send never carries a token about to lapse.
REFRESH_AHEAD_SECONDS = 300
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
_TOKEN_GONE_CODES = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})


@dataclass(frozen=True, slots=True)
class FcmConfig:
    service_account: Mapping[str, Any]
    url: str
    ca_file: str = ""

    @property
    def project_id(self) -> str:
        return str(self.service_account["project_id"])

    @classmethod
    def from_settings(cls, settings: Settings) -> FcmConfig | None:
        """None when FCM is not configured."""
        path = settings.fcm_credentials_file
        if not path:
            return None
        name = "PUSHGATE_FCM_CREDENTIALS_FILE"
        try:
            with open(path, "rb") as file:
                info = json.load(file)
        except OSError as exc:
            raise ConfigError(f"{name} {path!r}: {exc.strerror}") from None
        except ValueError:
            raise ConfigError(f"{name} {path!r} is not JSON") from None
        needed = ("type", "project_id", "client_email", "private_key", "token_uri")
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise ConfigError(f"{name} {path!r} is not a service-account key file")
        missing = [key for key in needed if not isinstance(info.get(key), str) or not info[key]]
        if missing:
            raise ConfigError(f"{name} {path!r} lacks {', '.join(missing)}")
        return cls(service_account=info, url=settings.fcm_url, ca_file=settings.tls_ca_file)


class _HttpxAuthRequest(google.auth.transport.Request):
    """google-auth's blocking HTTP hook on httpx, so the token request trusts the same
    anchors as every other connection (a `requests` session would let REQUESTS_CA_BUNDLE
    override them)."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> google.auth.transport.Response:
        try:
            response = self._client.request(
                method, url, content=body, headers=headers, timeout=timeout or 10.0
            )
        except httpx.HTTPError as exc:
            message = f"{type(exc).__name__}: {exc}"
            raise google.auth.exceptions.TransportError(message) from exc  # type: ignore[no-untyped-call]
        return _AuthResponse(response)


class _AuthResponse(google.auth.transport.Response):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def data(self) -> bytes:
        return self._response.content


class AccessTokens:
    """The process's OAuth access token for FCM, cached against the injected clock."""

    def __init__(self, config: FcmConfig, clock: Clock, timeout: float) -> None:
        try:
            self._credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                dict(config.service_account), scopes=[SCOPE]
            )
        except (ValueError, TypeError) as exc:  # a private key that is no RSA PEM key
            raise ConfigError(f"PUSHGATE_FCM_CREDENTIALS_FILE: unusable key ({exc})") from None
        self._http = httpx.Client(verify=client_ssl_context(config.ca_file), timeout=timeout)
        self._request = _HttpxAuthRequest(self._http)
        self._clock = clock
        self._lock = anyio.Lock()
        self._token = ""
        self._valid_until_ms = 0

    async def current(self) -> str:
        async with self._lock:
            if not self._token or self._clock.now_ms() >= self._valid_until_ms:
                await self._refresh()
            return self._token

    async def rejected(self, token: str) -> str:
        """FCM answered 401 to `token`: a new one, unless another send already got one."""
        async with self._lock:
            if token == self._token:
                await self._refresh()
            return self._token

    async def _refresh(self) -> None:
        lifetime = await anyio.to_thread.run_sync(self._fetch)
        ahead = min(REFRESH_AHEAD_SECONDS, lifetime / 2)
        self._valid_until_ms = self._clock.now_ms() + int((lifetime - ahead) * 1000)

    def _fetch(self) -> float:
        """Blocking: runs in a worker thread. Returns the token's lifetime in seconds."""
        self._credentials.refresh(self._request)
        self._token = str(self._credentials.token)
        expiry = self._credentials.expiry
        if expiry is None:
            return 3600.0
        # google-auth dates the expiry by the real clock; keep only the lifetime it implies.
        now = google_helpers.utcnow()  # type: ignore[no-untyped-call]
        return max(1.0, float((expiry - now).total_seconds()))

    def close(self) -> None:
        self._http.close()


class FcmTransport:
    def __init__(self, config: FcmConfig, clock: Clock, timeout: float = 10.0) -> None:
        self._clock = clock
        self._tokens = AccessTokens(config, clock, timeout)
        self._endpoint = f"{config.url.rstrip('/')}/v1/projects/{config.project_id}/messages:send"
        self._poster = Poster(
            timeout_seconds=timeout, ssl_context=client_ssl_context(config.ca_file)
        )

    async def send(self, request: PushRequest) -> SendResult:
        now_ms = self._clock.now_ms()
        if request.expires_ms <= now_ms:
            return Rejected("the session's deadline has passed")
        data = data_message(request)
        size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_PAYLOAD_BYTES:
            return Rejected(f"payload too large: {size} bytes, FCM takes 4096")
        body = {
            "message": {
                "token": request.token,
                # Data-only, as AM sends it (§5.2): the app builds its own notification.
                "data": data,
                "android": {
                    # HIGH must end in a visible notification or FCM deprioritises the app.
                    "priority": "NORMAL" if request.silent else "HIGH",
                    "ttl": f"{request.seconds_left(now_ms)}s",
                    "collapse_key": request.collapse_id,
                },
            }
        }
        try:
            token = await self._tokens.current()
        except google.auth.exceptions.GoogleAuthError as exc:
            return _token_failure(exc)
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        response = await self._post(content, token)
        if (
            isinstance(response, Posted)
            and response.status == 401
            # THIRD_PARTY_AUTH_ERROR is the APNs/web key in Firebase's console, not ours.
            and _fcm_error_code(response) != "THIRD_PARTY_AUTH_ERROR"
        ):
            # Our access token was refused: one new token, one more try.
            try:
                token = await self._tokens.rejected(token)
            except google.auth.exceptions.GoogleAuthError as exc:
                return _token_failure(exc)
            response = await self._post(content, token)
        if isinstance(response, RetryAfter):
            return response
        return self._result(request, response)

    async def _post(self, content: bytes, token: str) -> Posted | RetryAfter:
        headers = [("authorization", f"Bearer {token}"), ("content-type", "application/json")]
        try:
            return await self._poster.post(self._endpoint, headers, content)
        except PostError as exc:
            return RetryAfter(None, f"FCM connection failed: {exc}")

    def _result(self, request: PushRequest, response: Posted) -> SendResult:
        status = response.status
        if status == 200:
            name = _json(response).get("name")
            return Delivered(name if isinstance(name, str) else None)
        code = _fcm_error_code(response)
        where = f"FCM {status} {code or _status(response) or '(no error code)'}"
        if code in _TOKEN_GONE_CODES or (status == 400 and _invalid_token(response)):
            return TokenGone(where)
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.retry_after, self._clock.now_ms())
            return RetryAfter(retry_after, where)
        if status in (401, 403):
            log.error("FCM refused our credentials: %s (check PUSHGATE_FCM_*)", where)
        return Rejected(where)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._poster.aclose()
            self._tokens.close()


def _token_failure(exc: google.auth.exceptions.GoogleAuthError) -> SendResult:
    # The token endpoint's 4xx (a revoked key, a wrong token_uri) will not heal by itself.
    retryable = isinstance(exc, google.auth.exceptions.TransportError) or bool(
        getattr(exc, "retryable", False)
    )
    reason = f"FCM OAuth token request failed: {type(exc).__name__}: {exc}"
    if retryable:
        return RetryAfter(None, reason)
    log.error("%s (check PUSHGATE_FCM_CREDENTIALS_FILE)", reason)
    return Rejected(reason)


def _json(response: Posted) -> dict[str, Any]:
    try:
        document = json.loads(response.body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _error(response: Posted) -> dict[str, Any]:
    error = _json(response).get("error")
    return error if isinstance(error, dict) else {}


def _details(response: Posted) -> list[dict[str, Any]]:
    details = _error(response).get("details")
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _fcm_error_code(response: Posted) -> str:
    for detail in _details(response):
        if detail.get("@type") == _FCM_ERROR and isinstance(detail.get("errorCode"), str):
            return str(detail["errorCode"])
    return ""


def _status(response: Posted) -> str:
    status = _error(response).get("status")
    return status if isinstance(status, str) else ""


def _invalid_token(response: Posted) -> bool:
    """A 400 INVALID_ARGUMENT about the token itself (§2: treat the token as dead)."""
    for detail in _details(response):
        if detail.get("@type") != _BAD_REQUEST:
            continue
        violations = detail.get("fieldViolations")
        if isinstance(violations, list) and any(
            isinstance(v, dict) and v.get("field") == "message.token" for v in violations
        ):
            return True
    message = _error(response).get("message")
    return isinstance(message, str) and "not a valid FCM registration token" in message
