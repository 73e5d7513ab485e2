"""AWS SNS with AM's envelope (forgerock-push.md §5.2, §10), so that a deployment holding
Ping-issued SNS credentials keeps reaching the ForgeRock Authenticator.

A device's push token here is its SNS platform endpoint ARN (AM's `communicationId`), made at
registration and refresh from the app's token under the platform application of its transport
(`register`). A push is one `Publish` with `MessageStructure: json`: `default`, `GCM`, `APNS`
and `APNS_SANDBOX`, each provider's body as a JSON string; SNS picks the key of the endpoint's
platform. boto3 is synchronous: every call runs in a worker thread, a bounded number at once.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Literal, TypeVar

import anyio
import anyio.to_thread
import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from pushgate.clock import Clock
from pushgate.errors import BadRequest, Unavailable
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
    data_message,
)

if TYPE_CHECKING:
    from mypy_boto3_sns.client import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

log = logging.getLogger(__name__)

Platform = Literal["apns", "gcm"]  # the device's communicationType
T = TypeVar("T")

# What SNS says about the endpoint itself: the app's token is no longer valid (SNS disables
# the endpoint on the provider's word) or the endpoint was deleted.
_TOKEN_GONE_CODES = frozenset({"EndpointDisabled", "NotFound"})
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "Throttled",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "KMSThrottling",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
    }
)
_CREDENTIAL_CODES = frozenset(
    {
        "AuthorizationError",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "ExpiredToken",
        "AccessDenied",
        "PlatformApplicationDisabled",
    }
)
# AWS's answer to a token already registered with other attributes names the endpoint.
_EXISTING_ENDPOINT = re.compile(r"Endpoint (arn:\S+) already exists with the same Token")
_ENDPOINT_ARN = re.compile(r"arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:endpoint/\S+")
# AM's fallback text, shown only by clients that read no platform key.
_DEFAULT_TEXT = "Sign-in request"


@dataclass(frozen=True, slots=True)
class SnsConfig:
    region: str
    access_key_id: str = ""
    secret_access_key: str = ""
    endpoint_url: str = ""
    apple_arn: str = ""
    google_arn: str = ""
    ca_file: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> SnsConfig | None:
        """None unless a platform application ARN is set: without one no endpoint can be made
        and no device reached through SNS."""
        if not settings.sns_apple_arn and not settings.sns_google_arn:
            return None
        return cls(
            region=settings.sns_region,
            access_key_id=settings.sns_access_key_id,
            secret_access_key=settings.sns_secret_access_key,
            endpoint_url=settings.sns_endpoint_url,
            apple_arn=settings.sns_apple_arn,
            google_arn=settings.sns_google_arn,
            ca_file=settings.tls_ca_file,
        )


def envelope(request: PushRequest) -> dict[str, str]:
    """AM's `MessageStructure: json` message (§5.2): one JSON string per platform key."""
    gcm = {"priority": "normal" if request.silent else "high", "data": data_message(request)}
    apns = _json(apns_payload(request))
    default = request.title or request.body or request.extras.get("messageType") or _DEFAULT_TEXT
    return {"default": default, "GCM": _json(gcm), "APNS": apns, "APNS_SANDBOX": apns}


def message_attributes(
    request: PushRequest, ttl_seconds: int
) -> dict[str, MessageAttributeValueTypeDef]:
    """SNS's per-platform delivery options: expiry at the session's deadline, a collapse id
    per session, and a silent push as APNs requires it (background, priority 5)."""
    values = {
        "AWS.SNS.MOBILE.APNS.TTL": str(ttl_seconds),
        "AWS.SNS.MOBILE.APNS_SANDBOX.TTL": str(ttl_seconds),
        "AWS.SNS.MOBILE.FCM.TTL": str(ttl_seconds),
        "AWS.SNS.MOBILE.APNS.PUSH_TYPE": "background" if request.silent else "alert",
        "AWS.SNS.MOBILE.APNS.PRIORITY": "5" if request.silent else "10",
        "AWS.SNS.MOBILE.APNS.COLLAPSE_ID": request.collapse_id,
    }
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items()}


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class SnsTransport:
    def __init__(self, config: SnsConfig, clock: Clock, *, concurrency: int = 10) -> None:
        self._config = config
        self._clock = clock
        # Explicit keys when given, else boto3's own chain (environment, shared files, roles).
        session = boto3.session.Session(
            aws_access_key_id=config.access_key_id or None,
            aws_secret_access_key=config.secret_access_key or None,
            region_name=config.region,
        )
        self._client: SNSClient = session.client(
            "sns",
            endpoint_url=config.endpoint_url or None,
            # botocore's `verify` replaces the trust store: only a private endpoint gets ours.
            verify=(config.ca_file or None) if config.endpoint_url else None,
            config=Config(
                # One attempt: the outbox retries, with backoff, and never past the deadline.
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=5,
                read_timeout=10,
                max_pool_connections=concurrency,
            ),
        )
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._closed = False

    async def send(self, request: PushRequest) -> SendResult:
        if self._closed:
            raise RuntimeError("the SNS transport is closed")
        ttl = request.seconds_left(self._clock.now_ms())
        if ttl <= 0:
            return Rejected("the session's deadline has passed")
        if not _ENDPOINT_ARN.fullmatch(request.token):
            return TokenGone("not an SNS platform endpoint ARN")
        message = envelope(request)
        for key in ("GCM", "APNS"):
            size = len(message[key].encode())
            if size > MAX_PAYLOAD_BYTES:
                return Rejected(
                    f"payload too large: {size} bytes in {key}, the provider takes 4096"
                )
        publish = partial(
            self._client.publish,
            TargetArn=request.token,
            Message=_json(message),
            MessageStructure="json",
            MessageAttributes=message_attributes(request, ttl),
        )
        try:
            answer = await self._call(publish)
        except ClientError as exc:
            return _client_error(exc)
        except (NoCredentialsError, PartialCredentialsError) as exc:
            log.error("SNS: no usable AWS credentials (%s); check PUSHGATE_SNS_*", exc)
            return Rejected(f"SNS credentials: {exc}")
        except BotoCoreError as exc:  # connection refused, timeouts, a garbled answer
            return RetryAfter(None, f"SNS call failed: {type(exc).__name__}: {exc}")
        return Delivered(answer.get("MessageId"))

    async def register(self, platform: Platform, token: str) -> str | None:
        """The endpoint ARN for the app token `token` (AM's `CreatePlatformEndpoint` at
        registration and refresh), enabled and holding that token; None when no platform
        application is configured for `platform` (the device is then served by polling).
        Raises BadRequest when SNS refuses the token, Unavailable when SNS cannot be reached."""
        application = self._config.apple_arn if platform == "apns" else self._config.google_arn
        if not application:
            return None
        try:
            arn = await self._create(application, token)
            try:
                answer = await self._call(
                    partial(self._client.get_endpoint_attributes, EndpointArn=arn)
                )
                current = answer.get("Attributes", {})
            except ClientError as exc:
                if _code(exc) != "NotFound":
                    raise
                arn = await self._create(application, token)  # deleted in between: once more
                current = {}
            # AWS's token-management advice: a disabled endpoint, or one whose token the
            # provider changed, is brought back with the token the app has now.
            if current.get("Token") != token or current.get("Enabled", "").lower() != "true":
                await self._call(
                    partial(
                        self._client.set_endpoint_attributes,
                        EndpointArn=arn,
                        Attributes={"Token": token, "Enabled": "true"},
                    )
                )
        except ClientError as exc:
            code = _code(exc)
            if code in ("InvalidParameter", "InvalidParameterValue"):
                raise BadRequest("the push token was refused", reason=f"SNS: {exc}") from exc
            raise Unavailable("push registration is unavailable", reason=f"SNS: {exc}") from exc
        except BotoCoreError as exc:
            raise Unavailable("push registration is unavailable", reason=f"SNS: {exc}") from exc
        return arn

    async def _create(self, application: str, token: str) -> str:
        try:
            created = await self._call(
                partial(
                    self._client.create_platform_endpoint,
                    PlatformApplicationArn=application,
                    Token=token,
                )
            )
        except ClientError as exc:
            found = _EXISTING_ENDPOINT.search(_message(exc))
            if _code(exc) == "InvalidParameter" and found:
                return found.group(1)
            raise
        return created["EndpointArn"]

    async def _call(self, call: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(call, limiter=self._limiter)

    async def aclose(self) -> None:
        self._closed = True
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._client.close)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def _client_error(exc: ClientError) -> SendResult:
    code = _code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    where = f"SNS {status} {code}: {_message(exc)}"
    if code in _TOKEN_GONE_CODES:
        return TokenGone(where)
    if code in _TRANSIENT_CODES or status >= 500 or status == 429:
        return RetryAfter(None, where)
    if code in _CREDENTIAL_CODES:
        log.error("SNS refused our credentials: %s (check PUSHGATE_SNS_*)", where)
    return Rejected(where)
