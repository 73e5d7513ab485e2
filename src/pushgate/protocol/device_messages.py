"""Device → server messages: register, authenticate, refresh (seeds 000/001, spec §4) and the
pending poll (issue #2). Each verifier returns the verified value or raises BadDeviceMessage.

The claim sets are kept mutually exclusive (RFC 8725 §3.12): a register JWT carries `response`
and `deviceId`, an authenticate JWT `response` and never `deviceId`, a refresh JWT `deviceId`
and never `response`, a poll JWT neither. One device secret signs all of them, so this is what
stops a captured message of one kind from being replayed as another.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushgate.errors import BadDeviceMessage
from pushgate.protocol import jwt
from pushgate.protocol.challenge import response_matches
from pushgate.protocol.message_ids import MessageId, parse_message_id

# Wire texts stay generic on purpose: the reason goes to the log, not to a forger.
MALFORMED = "Malformed request"
REFUSED = "Message not accepted"

MAX_MECHANISM_UID = 128
MAX_USERNAME = 256
MAX_DEVICE_ID = 4096  # FCM tokens are ~160 chars; Web Push subscriptions are longer
MAX_SHORT = 64
MAX_DEVICE_NAME = 256
MAX_DETAIL = 1024
# Strings are refused if they hold U+0000: no identifier or name needs it, and PostgreSQL text
# cannot store it.
_NUMBER = re.compile(r"[+-]?[0-9]{1,9}")


@dataclass(frozen=True, slots=True)
class MessageRequest:
    message_id: MessageId
    jwt: str


@dataclass(frozen=True, slots=True)
class RefreshRequest:
    mechanism_uid: str
    username: str
    jwt: str


@dataclass(frozen=True, slots=True)
class PollRequest:
    mechanism_uid: str
    jwt: str


@dataclass(frozen=True, slots=True)
class DeviceDetails:
    """What register and refresh tell us about the phone and its push channel."""

    device_id: str
    device_type: str
    communication_type: str
    device_name: str | None


@dataclass(frozen=True, slots=True)
class Registration:
    mechanism_uid: str
    device: DeviceDetails


# What a denial may say (PowerAuth's operation reject reasons); UNEXPECTED_OPERATION is
# "this wasn't me".
DENY_REASONS = ("UNKNOWN", "INCORRECT_DATA", "UNEXPECTED_OPERATION")
_CODE = re.compile(r"[0-9]{6}")


@dataclass(frozen=True, slots=True)
class Answer:
    approved: bool
    number: int | None
    detail: str | None
    code: str | None = None  # `challengeResponse` as six digits, exactly as typed
    deny_reason: str | None = None
    operation_hash: str | None = None  # binds an approval to the operation's data


def operation_hash(data: str) -> str:
    """The `operationHash` claim an approval of an operation carries: the unpadded base64url
    SHA-256 of the operation data's UTF-8 bytes (dynamic linking, PSD2 RTS art. 5)."""
    digest = hashlib.sha256(data.encode("utf-8", "surrogatepass")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _string(body: Mapping[str, Any], name: str, limit: int, *, message: str = MALFORMED) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > limit or "\x00" in value:
        raise BadDeviceMessage(message, reason=f"{name} is not a string of 1..{limit} chars")
    return value


def _optional_string(claims: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise BadDeviceMessage(REFUSED, reason=f"claim {name} is not a string of <= {limit}")
    return value


def parse_message_request(body: Mapping[str, Any]) -> MessageRequest:
    """`{"messageId", "jwt"}` for register and authenticate; unknown fields are ignored."""
    raw_id = _string(body, "messageId", 128)
    token = _string(body, "jwt", jwt.MAX_JWT_CHARS)
    try:
        message_id = parse_message_id(raw_id)
    except ValueError as exc:
        raise BadDeviceMessage(REFUSED, reason=str(exc)) from exc
    return MessageRequest(message_id, token)


def parse_refresh_request(body: Mapping[str, Any]) -> RefreshRequest:
    """AM 8 needs both `mechanismUid` and `username` in the body (spec §4.4)."""
    return RefreshRequest(
        mechanism_uid=_string(body, "mechanismUid", MAX_MECHANISM_UID),
        username=_string(body, "username", MAX_USERNAME),
        jwt=_string(body, "jwt", jwt.MAX_JWT_CHARS),
    )


def parse_poll_request(body: Mapping[str, Any]) -> PollRequest:
    return PollRequest(
        mechanism_uid=_string(body, "mechanismUid", MAX_MECHANISM_UID),
        jwt=_string(body, "jwt", jwt.MAX_JWT_CHARS),
    )


def _claims(token: str, secret: bytes) -> dict[str, Any]:
    try:
        return jwt.verify(token, secret)
    except jwt.InvalidJwt as exc:
        raise BadDeviceMessage(REFUSED, reason=str(exc)) from exc


def _device_details(claims: Mapping[str, Any]) -> DeviceDetails:
    return DeviceDetails(
        device_id=_string(claims, "deviceId", MAX_DEVICE_ID, message=REFUSED),
        device_type=_string(claims, "deviceType", MAX_SHORT, message=REFUSED),
        communication_type=_string(claims, "communicationType", MAX_SHORT, message=REFUSED),
        device_name=_optional_string(claims, "deviceName", MAX_DEVICE_NAME),
    )


def _check_response(claims: Mapping[str, Any], secret: bytes, challenge: bytes) -> None:
    if not response_matches(secret, challenge, claims.get("response")):
        raise BadDeviceMessage(REFUSED, reason="response does not match the challenge")


def verify_registration(token: str, secret: bytes, challenge: bytes) -> Registration:
    claims = _claims(token, secret)
    _check_response(claims, secret, challenge)
    return Registration(
        mechanism_uid=_string(claims, "mechanismUid", MAX_MECHANISM_UID, message=REFUSED),
        device=_device_details(claims),
    )


def _number(value: object) -> int | None:
    """Parse `challengeResponse` like AM's `Integer.parseInt(value.toString())`; null = absent."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return int(value)
    raise BadDeviceMessage(REFUSED, reason="challengeResponse is not a number")


def verify_authentication(token: str, secret: bytes, challenge: bytes) -> Answer:
    claims = _claims(token, secret)
    if "deviceId" in claims:
        raise BadDeviceMessage(REFUSED, reason="register/refresh claims in an authenticate JWT")
    _check_response(claims, secret, challenge)
    raw_response = claims.get("challengeResponse")
    deny_reason = _optional_string(claims, "denyReason", 32)
    if deny_reason is not None and deny_reason not in DENY_REASONS:
        raise BadDeviceMessage(
            REFUSED, reason="denyReason is not one of " + ", ".join(DENY_REASONS)
        )
    return Answer(
        # AM: the mere presence of `deny` (any value, even false) denies (spec §4.3).
        approved="deny" not in claims,
        number=_number(raw_response),
        detail=_optional_string(claims, "detail", MAX_DETAIL),
        code=raw_response
        if isinstance(raw_response, str) and _CODE.fullmatch(raw_response)
        else None,
        deny_reason=deny_reason,
        operation_hash=_optional_string(claims, "operationHash", 64),
    )


def verify_refresh(token: str, secret: bytes, mechanism_uid: str) -> DeviceDetails:
    claims = _claims(token, secret)
    if "response" in claims:
        raise BadDeviceMessage(REFUSED, reason="a challenge response in a refresh JWT")
    claimed_uid = claims.get("mechanismUid")
    if claimed_uid is not None and claimed_uid != mechanism_uid:
        # iOS repeats the uid in the JWT; Android does not (spec §4.4).
        raise BadDeviceMessage(REFUSED, reason="mechanismUid claim differs from the body")
    return _device_details(claims)


def verify_poll(
    token: str, secret: bytes, mechanism_uid: str, now_ms: int, skew_seconds: int
) -> None:
    claims = _claims(token, secret)
    if "response" in claims or "deviceId" in claims:
        raise BadDeviceMessage(REFUSED, reason="foreign claims in a poll JWT")
    if claims.get("mechanismUid") != mechanism_uid:
        raise BadDeviceMessage(REFUSED, reason="mechanismUid claim differs from the body")
    issued = claims.get("iat")
    if not isinstance(issued, int) or isinstance(issued, bool):
        raise BadDeviceMessage(REFUSED, reason="iat is not an integer")
    if abs(now_ms // 1000 - issued) > skew_seconds:
        raise BadDeviceMessage(REFUSED, reason="iat outside the allowed clock skew")


def poll_claims(mechanism_uid: str, now_ms: int) -> dict[str, object]:
    """What a device signs to ask for its pending notifications."""
    return {"mechanismUid": mechanism_uid, "iat": now_ms // 1000}
