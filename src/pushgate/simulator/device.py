"""A simulated ForgeRock Authenticator: what the phone keeps and what it signs (spec §3-§5).

Pure: no I/O. `client.py` sends these bodies and `state.py` keeps the state in a file. On the
wire it behaves like the legacy Android SDK: lower-case mechanism uid, `android`/`gcm`, and
`{"response"[, "deny"][, "challengeResponse"]}` answers.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pushgate.protocol import jwt
from pushgate.protocol.challenge import SECRET_BYTES, challenge_response
from pushgate.protocol.device_messages import operation_hash, poll_claims
from pushgate.protocol.encoding import b64std_decode
from pushgate.protocol.push_payload import PushType
from pushgate.protocol.qr import RegistrationUri

DEFAULT_DEVICE_NAME = "pushgate simulator"
DEFAULT_TTL_SECONDS = 120  # what Android assumes when `t` is missing (spec §5.1)
MAX_NOTIFICATIONS = 100  # the device keeps the newest ones only


class SimulatorError(Exception):
    """The simulated device refused something, or the server did not answer 200 `{}`."""

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        return f"{self.message} (HTTP {self.status}: {(self.body or '')[:500]})"


def action_url(url: str, action: str) -> str:
    """The same endpoint with another `_action`: r, a, refresh and pending differ only there."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "_action"]
    query.append(("_action", action))
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass(frozen=True, slots=True)
class Mechanism:
    """One push account on the phone, made from a registration QR code."""

    issuer: str
    account: str
    mechanism_uid: str
    secret: bytes = field(repr=False)
    register_url: str
    authenticate_url: str
    lb_cookie: str
    user_id: str | None = None
    device_profile_id: str | None = None

    @property
    def refresh_url(self) -> str:
        # Android swaps `_action=register` for `refresh` in `r` (spec §3.2).
        return action_url(self.register_url, "refresh")

    @property
    def pending_url(self) -> str:
        return action_url(self.register_url, "pending")


@dataclass(frozen=True, slots=True)
class Notification:
    """A push the device received and verified; `claims` are all strings (spec §5.1)."""

    message_id: str
    mechanism_uid: str
    jwt: str
    claims: Mapping[str, str]
    received_ms: int
    answered: bool = False

    @property
    def message(self) -> str:
        return self.claims.get("m", "")

    @property
    def push_type(self) -> PushType:
        # An unknown `k` is treated as a plain tap-to-accept push, as the SDKs do.
        try:
            return PushType(self.claims.get("k", PushType.DEFAULT))
        except ValueError:
            return PushType.DEFAULT

    @property
    def numbers(self) -> tuple[int, ...]:
        """The numbers to choose from; only a `challenge` push has them."""
        text = self.claims.get("n", "")
        if self.push_type is not PushType.CHALLENGE or not text:
            return ()
        parts = text.split(",")
        if not all(part.isascii() and part.isdigit() for part in parts):
            return ()
        return tuple(int(part) for part in parts)

    @property
    def username(self) -> str | None:
        return self.claims.get("d")

    @property
    def context(self) -> dict[str, object] | None:
        """Where the sign-in comes from (`x` claim): remoteIp, userAgent, location."""
        return _json_object(self.claims.get("x"))

    @property
    def operation(self) -> dict[str, object] | None:
        """What the approval authorizes (`o` claim): id, name and data."""
        return _json_object(self.claims.get("o"))

    @property
    def created_ms(self) -> int:
        # `i` is optional; the device then uses the time it got the push (spec §5.1).
        text = self.claims.get("i", "")
        return int(text) if text.isascii() and text.isdigit() else self.received_ms

    @property
    def ttl_seconds(self) -> int:
        text = self.claims.get("t", "")
        return int(text) if text.isascii() and text.isdigit() else DEFAULT_TTL_SECONDS

    @property
    def expires_ms(self) -> int:
        return self.created_ms + self.ttl_seconds * 1000

    def expired(self, now_ms: int) -> bool:
        return now_ms > self.expires_ms


@dataclass(frozen=True, slots=True)
class SimulatedDevice:
    """The phone: its push token, its mechanisms and the pushes it has seen."""

    device_id: str
    device_name: str = DEFAULT_DEVICE_NAME
    device_type: str = "android"
    communication_type: str = "gcm"
    mechanisms: tuple[Mechanism, ...] = ()
    notifications: tuple[Notification, ...] = ()

    def mechanism(self, mechanism_uid: str) -> Mechanism:
        for mechanism in self.mechanisms:
            if mechanism.mechanism_uid == mechanism_uid:
                return mechanism
        raise SimulatorError(f"no mechanism {mechanism_uid!r} on this device")

    def notification(self, message_id: str) -> Notification | None:
        for notification in self.notifications:
            if notification.message_id == message_id:
                return notification
        return None

    def with_mechanism(self, mechanism: Mechanism) -> SimulatedDevice:
        """Add a mechanism. A new QR code for the same issuer and account replaces the old one:
        the app would refuse the duplicate, but a test rig wants the newest registration."""
        kept = tuple(
            m
            for m in self.mechanisms
            if m.mechanism_uid != mechanism.mechanism_uid
            and (m.issuer, m.account) != (mechanism.issuer, mechanism.account)
        )
        return replace(self, mechanisms=(*kept, mechanism))

    def with_notifications(self, received: Iterable[Notification]) -> SimulatedDevice:
        """Store new pushes. A known messageId keeps the stored copy, as the SDKs do (spec §5.3)."""
        known = {n.message_id for n in self.notifications}
        merged = list(self.notifications)
        for notification in received:
            if notification.message_id not in known:
                known.add(notification.message_id)
                merged.append(notification)
        # AM 8 pushes carry the username in `d`; the device uses it when the QR had no `uid`.
        usernames = {n.mechanism_uid: n.username for n in merged if n.username}
        mechanisms = tuple(
            replace(m, user_id=usernames[m.mechanism_uid])
            if m.user_id is None and m.mechanism_uid in usernames
            else m
            for m in self.mechanisms
        )
        return replace(
            self, mechanisms=mechanisms, notifications=tuple(merged[-MAX_NOTIFICATIONS:])
        )

    def with_answered(self, message_id: str) -> SimulatedDevice:
        return replace(
            self,
            notifications=tuple(
                replace(n, answered=True) if n.message_id == message_id else n
                for n in self.notifications
            ),
        )

    def newest_unanswered(self, now_ms: int) -> Notification | None:
        candidates = [
            (n.created_ms, index, n)
            for index, n in enumerate(self.notifications)
            if not n.answered and not n.expired(now_ms)
        ]
        return max(candidates)[2] if candidates else None


def new_device(
    device_name: str = DEFAULT_DEVICE_NAME, device_id: str | None = None
) -> SimulatedDevice:
    return SimulatedDevice(
        device_id=device_id if device_id is not None else f"sim-{secrets.token_hex(16)}",
        device_name=device_name,
    )


def new_mechanism_uid() -> str:
    # Android makes a lower-case UUID; iOS an upper-case one (spec §4.2).
    return str(uuid.uuid4())


def _check_secret(secret: bytes) -> None:
    if len(secret) < SECRET_BYTES:
        # Android's Nimbus MACSigner: "The secret length must be at least 256 bits" (spec §2).
        raise SimulatorError(f"shared secret is {len(secret)} bytes; at least 32 are needed")


def mechanism_from_uri(uri: RegistrationUri, mechanism_uid: str) -> Mechanism:
    _check_secret(uri.secret)
    return Mechanism(
        issuer=uri.issuer,
        account=uri.account,
        mechanism_uid=mechanism_uid,
        secret=uri.secret,
        register_url=uri.register_url,
        authenticate_url=uri.authenticate_url,
        lb_cookie=uri.lb_cookie,
        user_id=uri.user_id,
        device_profile_id=uri.device_profile_id,
    )


def _verified_push_claims(mechanism: Mechanism, push_jwt: str) -> dict[str, str]:
    try:
        claims = jwt.verify(push_jwt, mechanism.secret)
    except jwt.InvalidJwt as exc:
        raise SimulatorError(f"push JWT does not verify: {exc}") from exc
    strings = {k: v for k, v in claims.items() if isinstance(v, str)}
    if len(strings) != len(claims):
        # Legacy Android casts every claim with (String); anything else loses the push.
        raise SimulatorError("push JWT has a claim that is not a string")
    if strings.get("u") != mechanism.mechanism_uid:
        raise SimulatorError("push JWT is for another mechanism")
    try:
        challenge = b64std_decode(strings.get("c", ""))
    except ValueError as exc:
        raise SimulatorError("push JWT challenge `c` is not standard Base64") from exc
    if not challenge:
        raise SimulatorError("push JWT has no challenge `c`")
    return strings


def decode_notification(
    mechanism: Mechanism, message_id: str, push_jwt: str, received_ms: int
) -> Notification:
    """Verify a push the way the app does before showing it; raises SimulatorError."""
    claims = _verified_push_claims(mechanism, push_jwt)
    return Notification(message_id, mechanism.mechanism_uid, push_jwt, claims, received_ms)


def registration_body(
    uri: RegistrationUri, mechanism_uid: str, device: SimulatedDevice
) -> dict[str, str]:
    """`{"messageId", "jwt"}` for `_action=register`; claim order as in spec §9 item 4."""
    _check_secret(uri.secret)
    claims = {
        "response": challenge_response(uri.secret, uri.challenge),
        "mechanismUid": mechanism_uid,
        "deviceId": device.device_id,
        "deviceName": device.device_name,
        "deviceType": device.device_type,
        "communicationType": device.communication_type,
    }
    return {"messageId": uri.message_id, "jwt": jwt.sign(claims, uri.secret)}


def answer_body(
    mechanism: Mechanism,
    message_id: str,
    push_jwt: str,
    approve: bool,
    number: int | None = None,
    detail: str | None = None,
    *,
    code: str | None = None,
    deny_reason: str | None = None,
    operation_data: str | None = None,
) -> dict[str, str]:
    """`{"messageId", "jwt"}` for `_action=authenticate` (spec §4.3).

    The device re-verifies the push before it answers: the response is an HMAC of the push's
    own challenge, so it is only as good as that challenge's origin. `code` is what the person
    typed for a `code` push (sent as `challengeResponse`, six digits). An approval of a push
    with an operation (the `o` claim) carries `operationHash`, the unpadded base64url SHA-256
    of the operation data the device showed: of `operation_data` if given (a test of a device
    that showed something else), else of the push's own.
    """
    claims = _verified_push_claims(mechanism, push_jwt)
    answer: dict[str, object] = {
        "response": challenge_response(mechanism.secret, b64std_decode(claims["c"]))
    }
    if not approve:
        answer["deny"] = True
        if deny_reason is not None:
            answer["denyReason"] = deny_reason
    if number is not None:
        # Android sends the chosen number as a string.
        answer["challengeResponse"] = str(number)
    if code is not None:
        answer["challengeResponse"] = code
    if detail is not None:
        answer["detail"] = detail
    shown = operation_data if operation_data is not None else _operation_data(claims)
    if approve and shown is not None:
        answer["operationHash"] = operation_hash(shown)
    return {"messageId": message_id, "jwt": jwt.sign(answer, mechanism.secret)}


def _json_object(text: str | None) -> dict[str, object] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _operation_data(claims: Mapping[str, str]) -> str | None:
    """The data of the push's operation (`o` claim, JSON text), if it has any."""
    data = (_json_object(claims.get("o")) or {}).get("data")
    return data if isinstance(data, str) else None


def refresh_body(mechanism: Mechanism, device: SimulatedDevice) -> dict[str, str]:
    """`{"mechanismUid", "username", "jwt"}` for `_action=refresh` (spec §4.4).

    Android sends `username` only when it knows it and leaves `mechanismUid` out of the JWT.
    """
    claims = {
        "deviceId": device.device_id,
        "deviceName": device.device_name,
        "deviceType": device.device_type,
        "communicationType": device.communication_type,
    }
    body = {"mechanismUid": mechanism.mechanism_uid}
    if mechanism.user_id is not None:
        body["username"] = mechanism.user_id
    body["jwt"] = jwt.sign(claims, mechanism.secret)
    return body


def poll_body(mechanism: Mechanism, now_ms: int) -> dict[str, str]:
    """`{"mechanismUid", "jwt"}` for pushgate's `_action=pending` poll."""
    claims = poll_claims(mechanism.mechanism_uid, now_ms)
    return {"mechanismUid": mechanism.mechanism_uid, "jwt": jwt.sign(claims, mechanism.secret)}
