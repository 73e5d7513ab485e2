"""The Web Push wire format, pure (push-transports.md §3): the PushSubscription a browser
registers, the aes128gcm message encryption of RFC 8291 (over RFC 8188) and the VAPID
`Authorization` header of RFC 8292. Keys, bytes and `now` in; values out or a ValueError.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pushgate.protocol.encoding import strict_json_object

# RFC 8291 §4: one record of at most 4096 bytes; the header takes 86 (salt 16, rs 4, idlen 1,
# the 65-byte key), the GCM tag 16 and the padding delimiter 1.
RECORD_SIZE = 4096
HEADER_BYTES = 16 + 4 + 1 + 65
MAX_PLAINTEXT_BYTES = RECORD_SIZE - HEADER_BYTES - 16 - 1  # 3993
# A subscription is stored as a device's push token: bounded like every input.
MAX_SUBSCRIPTION_CHARS = 4096
MAX_ENDPOINT_CHARS = 2048
# RFC 8030 §5.4: a Topic is at most 32 characters of the URL-safe Base64 alphabet.
TOPIC_CHARS = 32
# RFC 8292 §2: services refuse an `exp` more than 24 hours ahead; 12 absorbs clock skew.
VAPID_LIFETIME_SECONDS = 12 * 3600

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


@dataclass(frozen=True, slots=True)
class Subscription:
    """A browser's PushSubscription: where to post, and the keys to encrypt for."""

    endpoint: str
    p256dh: bytes  # the user agent's P-256 public key, uncompressed (65 bytes)
    auth: bytes  # the 16-byte authentication secret

    @property
    def origin(self) -> str:
        """The push service's origin: the VAPID token's audience (RFC 8292 §2)."""
        url = urlsplit(self.endpoint)
        return f"{url.scheme}://{url.netloc}"


def parse_subscription(text: str) -> Subscription:
    """The subscription in `text`, the JSON of `PushSubscription.toJSON()`:
    `{"endpoint": "https://...", "keys": {"p256dh": "...", "auth": "..."}}` (an
    `expirationTime` and names added by later browsers are ignored). ValueError says what is
    wrong, fit for a registration's error message."""
    if len(text) > MAX_SUBSCRIPTION_CHARS:
        raise ValueError(f"a push subscription has at most {MAX_SUBSCRIPTION_CHARS} characters")
    try:
        document = strict_json_object(text)
    except ValueError as exc:
        raise ValueError(f"a push subscription is a JSON object ({exc})") from None
    endpoint = document.get("endpoint")
    keys = document.get("keys")
    if not isinstance(endpoint, str):
        raise ValueError("a push subscription needs its `endpoint` (a string)")
    if not isinstance(keys, dict):
        raise ValueError("a push subscription needs its `keys` (an object)")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not isinstance(p256dh, str) or not isinstance(auth, str):
        raise ValueError("a push subscription's keys are `p256dh` and `auth` (strings)")
    _check_endpoint(endpoint)
    public = _base64url(p256dh, "keys.p256dh")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    except ValueError:
        raise ValueError("keys.p256dh is not an uncompressed P-256 public key") from None
    if len(public) != 65:  # a compressed point would load, but RFC 8291 §3.1 sends 65 bytes
        raise ValueError("keys.p256dh is not an uncompressed P-256 public key")
    secret = _base64url(auth, "keys.auth")
    if len(secret) != 16:
        raise ValueError("keys.auth is not a 16-byte authentication secret")
    return Subscription(endpoint, public, secret)


def _check_endpoint(endpoint: str) -> None:
    if len(endpoint) > MAX_ENDPOINT_CHARS:
        raise ValueError(f"the endpoint has at most {MAX_ENDPOINT_CHARS} characters")
    if not endpoint.isascii() or any(c.isspace() or not c.isprintable() for c in endpoint):
        raise ValueError("the endpoint is not a URL (spaces or non-ASCII characters)")
    try:
        url = urlsplit(endpoint)
        url.port  # noqa: B018 - raises on a port that is no number or out of range
    except ValueError:
        raise ValueError("the endpoint is not a URL") from None
    # Only TLS: the payload is encrypted, but the VAPID token and the metadata are not.
    if url.scheme != "https" or not url.hostname:
        raise ValueError("the endpoint must be an https:// URL with a host")
    if url.username is not None or url.password is not None or url.fragment:
        raise ValueError("the endpoint must carry no user name, password or fragment")


def _base64url(text: str, name: str) -> bytes:
    # Browsers send unpadded base64url; padded values (some libraries) are accepted too.
    if not _BASE64URL.fullmatch(text):
        raise ValueError(f"{name} is not base64url")
    try:
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} is not base64url") from None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_key_bytes(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """The uncompressed point (65 bytes): the form of `p256dh`, `as_public` and VAPID's `k`."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def encrypt(
    plaintext: bytes,
    subscription: Subscription,
    *,
    salt: bytes,
    sender_key: ec.EllipticCurvePrivateKey,
) -> bytes:
    """The aes128gcm body of one push message (RFC 8291 §3.4, RFC 8188 §2). `salt` (16 random
    bytes) and `sender_key` (an ephemeral P-256 key) must be fresh for every message: the
    caller makes them, so that the RFC's Appendix A example can be replayed byte for byte."""
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise ValueError(f"a push message holds at most {MAX_PLAINTEXT_BYTES} bytes")
    if len(salt) != 16:
        raise ValueError("the salt has 16 bytes")
    receiver = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), subscription.p256dh)
    as_public = public_key_bytes(sender_key)
    shared = sender_key.exchange(ec.ECDH(), receiver)
    # HKDF-SHA-256 written out: each expansion needs one block only (T(1) = HMAC(PRK, info|1)).
    prk_key = _hmac(subscription.auth, shared)
    ikm = _hmac(prk_key, b"WebPush: info\x00" + subscription.p256dh + as_public + b"\x01")
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    # 0x02 marks the last (here the only) record; no further padding.
    ciphertext = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)
    header = salt + struct.pack("!IB", RECORD_SIZE, len(as_public)) + as_public
    return header + ciphertext


def topic(collapse_id: str) -> str:
    """The `Topic` of a session's pushes (RFC 8030 §5.4): 32 URL-safe Base64 characters, the
    same for every push of the session, so a newer one replaces an undelivered older one."""
    digest = hashlib.sha256(collapse_id.encode()).digest()[:24]  # 24 bytes → 32 characters
    return b64url(digest)


def vapid_token(key: ec.EllipticCurvePrivateKey, audience: str, subject: str, now_s: int) -> str:
    """The VAPID JWT (RFC 8292 §2): ES256, `aud` the push service's origin, `exp` 12 hours
    ahead, `sub` the operator's contact."""
    claims = {"aud": audience, "exp": now_s + VAPID_LIFETIME_SECONDS, "sub": subject}
    return jwt.encode(claims, key, algorithm="ES256", headers={"typ": "JWT"})


def vapid_authorization(token: str, key: ec.EllipticCurvePrivateKey) -> str:
    """The `Authorization` header value (RFC 8292 §3: scheme `vapid`, `t` and `k`)."""
    return f"vapid t={token}, k={b64url(public_key_bytes(key))}"
