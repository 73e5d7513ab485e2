"""Break-it tests for device-message JWTs (security.md §2, §9 B1-B8) at the protocol level.

Every forged token here is validly MACed where that matters, so a rejection shows the check
under test is what stops it, not a broken signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st
from jwt.warnings import InsecureKeyLengthWarning

from pushgate.errors import BadDeviceMessage
from pushgate.protocol import jwt
from pushgate.protocol.challenge import challenge_response, response_matches
from pushgate.protocol.device_messages import (
    REFUSED,
    poll_claims,
    verify_authentication,
    verify_poll,
    verify_refresh,
    verify_registration,
)
from pushgate.protocol.encoding import (
    b64std,
    b64std_decode,
    b64url,
    b64url_decode,
    compact_json,
)

SECRET = hashlib.sha256(b"pushgate device secret").digest()
OTHER_SECRET = hashlib.sha256(b"another device's secret").digest()
CHALLENGE = hashlib.sha256(b"push challenge").digest()
RESPONSE = challenge_response(SECRET, CHALLENGE)
UID = "b162b325-ebb1-48e0-8ab7-b38cf341da95"
NOW_MS = 1_790_000_000_123
HS256_HEADER = {"typ": "JWT", "alg": "HS256"}
DEVICE = {
    "deviceId": "testFcmToken",
    "deviceName": "Pixel 8",
    "deviceType": "android",
    "communicationType": "gcm",
}


def _segment(part: dict[str, Any] | bytes) -> str:
    return b64url(part if isinstance(part, bytes) else compact_json(part).encode())


def forge(
    header: dict[str, Any] | bytes,
    claims: dict[str, Any] | bytes,
    key: bytes = SECRET,
    digest: Callable[[], Any] = hashlib.sha256,
) -> str:
    """A token with any header and payload bytes, MACed with `key` over its signing input."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    mac = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(mac)}"


def answer_token(**claims: object) -> str:
    return jwt.sign({"response": RESPONSE, **claims}, SECRET)


# --- well-formed tokens pass (the control for everything below) -----------------------------


def test_sign_then_verify() -> None:
    token = jwt.sign({"response": RESPONSE, "deny": True}, SECRET)
    assert jwt.verify(token, SECRET) == {"response": RESPONSE, "deny": True}
    assert forge(HS256_HEADER, {"a": "b"}) == jwt.sign({"a": "b"}, SECRET)


@pytest.mark.parametrize("typ", ["JWT", "jwt", None])
def test_typ_jwt_or_absent_is_accepted(typ: str | None) -> None:
    header: dict[str, Any] = {"alg": "HS256"} if typ is None else {"typ": typ, "alg": "HS256"}
    assert jwt.verify(forge(header, {"a": "b"}), SECRET) == {"a": "b"}


@pytest.mark.parametrize("typ", ["at+jwt", "JOSE", "", 1, ["JWT"]])
def test_other_typ_is_rejected(typ: object) -> None:
    with pytest.raises(jwt.InvalidJwt, match="typ"):
        jwt.verify(forge({"typ": typ, "alg": "HS256"}, {"a": "b"}), SECRET)


@pytest.mark.parametrize("token", [None, b"a.b.c", 42, "", "abc", "a.b", "a.b.c.d"])
def test_not_a_compact_jws(token: object) -> None:
    with pytest.raises(jwt.InvalidJwt):
        jwt.verify(token, SECRET)


# --- B1: alg none -------------------------------------------------------------------------


def test_b1_alg_none_made_by_pyjwt_is_rejected() -> None:
    token = pyjwt.encode({"response": RESPONSE}, "", algorithm="none")
    assert token.endswith(".")  # really unsigned
    with pytest.raises(jwt.InvalidJwt, match="alg"):
        jwt.verify(token, SECRET)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "", None])
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "with-hs256-signature"])
def test_b1_alg_none_with_and_without_signature(alg: str | None, signed: bool) -> None:
    header = {"typ": "JWT", "alg": alg}
    token = forge(header, {"response": RESPONSE})
    if not signed:
        token = token.rsplit(".", 1)[0] + "."
    with pytest.raises(jwt.InvalidJwt, match="alg"):
        jwt.verify(token, SECRET)


def test_b1_missing_alg_and_two_segment_tokens_are_rejected() -> None:
    with pytest.raises(jwt.InvalidJwt, match="alg"):
        jwt.verify(forge({"typ": "JWT"}, {"response": RESPONSE}), SECRET)
    with pytest.raises(jwt.InvalidJwt, match="three segments"):
        jwt.verify(answer_token().rsplit(".", 1)[0], SECRET)


# --- B2: other algorithms ------------------------------------------------------------------


def _pem(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_b2_longer_hmac_with_the_right_secret_is_rejected(alg: str) -> None:
    # A MAC that is valid under the device secret, just not HS256: the alg pin must catch it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)  # 32 bytes < HS384/512's minimum
        token = pyjwt.encode({"response": RESPONSE}, SECRET, algorithm=alg)
        assert pyjwt.decode(token, SECRET, algorithms=[alg]) == {"response": RESPONSE}
    with pytest.raises(jwt.InvalidJwt, match="alg"):
        jwt.verify(token, SECRET)


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_b2_rsa_tokens_are_rejected(alg: str, rsa_key: rsa.RSAPrivateKey) -> None:
    token = pyjwt.encode({"response": RESPONSE}, rsa_key, algorithm=alg)
    with pytest.raises(jwt.InvalidJwt, match="alg"):
        jwt.verify(token, SECRET)


def test_b2_es256_token_is_rejected(ec_key: ec.EllipticCurvePrivateKey) -> None:
    token = pyjwt.encode({"response": RESPONSE}, ec_key, algorithm="ES256")
    with pytest.raises(jwt.InvalidJwt, match="alg"):
        jwt.verify(token, SECRET)


@pytest.mark.parametrize("alg", ["HS256", "RS256"])
def test_b2_hs256_signed_with_a_public_key_string_is_rejected(
    alg: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    # The classic key confusion: the attacker MACs with the (public) PEM text as the key.
    token = forge({"typ": "JWT", "alg": alg}, {"response": RESPONSE}, key=_pem(rsa_key))
    with pytest.raises(jwt.InvalidJwt):
        jwt.verify(token, SECRET)


@pytest.mark.parametrize("alg", ["hs256", "HS256 ", "HS 256", ["HS256"]])
def test_b2_near_miss_alg_names_are_rejected(alg: object) -> None:
    with pytest.raises(jwt.InvalidJwt, match="alg"):
        jwt.verify(forge({"typ": "JWT", "alg": alg}, {"response": RESPONSE}), SECRET)


# --- B3: the right algorithm, the wrong key ---------------------------------------------------


def test_b3_another_devices_secret_is_rejected() -> None:
    token = jwt.sign({"response": RESPONSE}, OTHER_SECRET)
    with pytest.raises(jwt.InvalidJwt, match="signature"):
        jwt.verify(token, SECRET)


# --- B4: bit flips, truncation, Base64 variants -----------------------------------------------


def _flip(segment: str, index: int, bit: int) -> str:
    data = bytearray(b64url_decode(segment))
    data[index] ^= 1 << bit
    return b64url(bytes(data))


@pytest.mark.parametrize("part", [0, 1, 2], ids=["header", "payload", "signature"])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("bit", [0, 7])
def test_b4_one_bit_flipped_anywhere_is_rejected(part: int, where: str, bit: int) -> None:
    segments = answer_token().split(".")
    size = len(b64url_decode(segments[part]))
    index = {"first": 0, "middle": size // 2, "last": size - 1}[where]
    segments[part] = _flip(segments[part], index, bit)
    with pytest.raises(jwt.InvalidJwt):
        jwt.verify(".".join(segments), SECRET)


def test_b4_every_signature_byte_matters() -> None:
    header, payload, signature = answer_token().split(".")
    for index in range(len(b64url_decode(signature))):
        with pytest.raises(jwt.InvalidJwt):
            jwt.verify(f"{header}.{payload}.{_flip(signature, index, 0)}", SECRET)


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 43])
def test_b4_truncated_signature_is_rejected(cut: int) -> None:
    token = answer_token()
    with pytest.raises(jwt.InvalidJwt):
        jwt.verify(token[:-cut], SECRET)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + "=",
        lambda t: t + "A",
        lambda t: t + "AAAA",
        lambda t: t.replace(".", "=.", 1),
        lambda t: t.replace(".", "==.", 2),
        lambda t: " " + t,
        lambda t: t + "\n",
        lambda t: t.replace(".", ". ", 1),
    ],
    ids=["sig+=", "sig+A", "sig+AAAA", "header=", "payload==", "space", "newline", "inner-space"],
)
def test_b4_padding_and_junk_are_rejected(mangle: Callable[[str], str]) -> None:
    with pytest.raises(jwt.InvalidJwt):
        jwt.verify(mangle(answer_token()), SECRET)


# The §9 item 4 register JWT: its signature holds both '-' and '_'.
REGISTER_JWT = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJyZXNwb25zZSI6IkRmMDJBd0EzUmErc1RHa0w1K1F2a0V0TjNlTGRa"
    "aUZtTDVueEFWMW0wazg9IiwibWVjaGFuaXNtVWlkIjoiYjE2MmIzMjUtZWJiMS00OGUwLThhYjctYjM4Y2YzNDFkYTk1"
    "IiwiZGV2aWNlSWQiOiJ0ZXN0RmNtVG9rZW4iLCJkZXZpY2VOYW1lIjoiUGl4ZWwgOCIsImRldmljZVR5cGUiOiJhbmRy"
    "b2lkIiwiY29tbXVuaWNhdGlvblR5cGUiOiJnY20ifQ.AtpZwe1f0pVYQw_xD-Q_D2dQUS9NDvT3KJZdQGEzi9Q"
)
REGISTER_SECRET = b64std_decode("b3uYLkQ7dRPjBaIzV0t/aijoXRgMq+NP5AwVAvRfa/E=")


def test_b4_standard_alphabet_is_rejected() -> None:
    assert jwt.verify(REGISTER_JWT, REGISTER_SECRET)  # control
    header, payload, signature = REGISTER_JWT.split(".")
    std_signature = signature.replace("-", "+").replace("_", "/")
    assert std_signature != signature
    # The same bytes in the other alphabet: only the alphabet is wrong.
    assert base64.b64decode(std_signature + "=") == b64url_decode(signature)
    with pytest.raises(jwt.InvalidJwt, match="malformed"):
        jwt.verify(f"{header}.{payload}.{std_signature}", REGISTER_SECRET)


def _non_canonical_last_char(segment: str) -> str:
    """The same bytes with a non-zero unused bit in the last character."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(segment) % 4 in (2, 3)
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) ^ 1]


@pytest.mark.parametrize("part", [1, 2], ids=["payload", "signature"])
def test_b4_non_canonical_last_character_is_rejected(part: int) -> None:
    segments = answer_token().split(".")
    if len(segments[part]) % 4 == 0:
        segments = answer_token(pad="x").split(".")
    original = segments[part]
    segments[part] = _non_canonical_last_char(original)
    # A lenient decoder sees the very same bytes: the encoding is malleable, not the data.
    lenient = base64.urlsafe_b64decode(segments[part] + "=" * (-len(segments[part]) % 4))
    assert lenient == b64url_decode(original)
    with pytest.raises(jwt.InvalidJwt, match="malformed"):
        jwt.verify(".".join(segments), SECRET)


B64_NOISE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_= \n."


@given(st.binary(max_size=64))
def test_base64_round_trips(data: bytes) -> None:
    assert b64url_decode(b64url(data)) == data
    assert b64std_decode(b64std(data)) == data


@given(st.text(alphabet=B64_NOISE, max_size=16))
def test_b64url_decode_accepts_only_canonical_text(text: str) -> None:
    try:
        data = b64url_decode(text)
    except ValueError:
        return
    assert b64url(data) == text


@given(st.text(alphabet=B64_NOISE, max_size=16))
def test_b64std_decode_accepts_only_canonical_text(text: str) -> None:
    try:
        data = b64std_decode(text)
    except ValueError:
        return
    assert b64std(data) == text


@given(st.binary(min_size=1, max_size=48))
def test_base64_decoders_refuse_the_other_variant(data: bytes) -> None:
    padded, unpadded = b64std(data), b64url(data)
    if padded != unpadded:
        with pytest.raises(ValueError):
            b64url_decode(padded)
        with pytest.raises(ValueError):
            b64std_decode(unpadded)


# --- B5: header parameters ------------------------------------------------------------------


@pytest.mark.parametrize("crit", [["exp"], ["b64"], [], "kid"])
def test_b5_crit_is_rejected(crit: object) -> None:
    token = forge({**HS256_HEADER, "crit": crit, "exp": 1}, {"response": RESPONSE})
    with pytest.raises(jwt.InvalidJwt):
        jwt.verify(token, SECRET)


@pytest.fixture
def canary() -> Iterator[tuple[socket.socket, str]]:
    """A listening socket; any key-fetching attempt would connect to it."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    try:
        yield server, f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def test_b5_key_location_headers_are_ignored(canary: tuple[socket.socket, str]) -> None:
    server, url = canary
    header = {
        **HS256_HEADER,
        "kid": "attacker-key",
        "jku": f"{url}/jwks.json",
        "x5u": f"{url}/cert.pem",
        "jwk": {"kty": "oct", "k": b64url(OTHER_SECRET)},
    }
    assert jwt.verify(forge(header, {"response": RESPONSE}), SECRET) == {"response": RESPONSE}
    # Signed with the key the header offers: that key must never be used.
    with pytest.raises(jwt.InvalidJwt, match="signature"):
        jwt.verify(forge(header, {"response": RESPONSE}, key=OTHER_SECRET), SECRET)
    with pytest.raises(BlockingIOError):
        server.accept()  # nobody connected


# --- B6: duplicate member names ---------------------------------------------------------------


def test_b6_duplicate_claims_are_rejected() -> None:
    payload = b'{"response":"' + RESPONSE.encode() + b'","response":"AAAA"}'
    with pytest.raises(jwt.InvalidJwt, match="duplicate"):
        jwt.verify(forge(HS256_HEADER, payload), SECRET)


def test_b6_duplicate_deny_cannot_smuggle_two_meanings() -> None:
    payload = b'{"response":"' + RESPONSE.encode() + b'","deny":true,"deny":false}'
    with pytest.raises(jwt.InvalidJwt, match="duplicate"):
        jwt.verify(forge(HS256_HEADER, payload), SECRET)


def test_b6_duplicate_header_members_are_rejected() -> None:
    header = b'{"typ":"JWT","alg":"none","alg":"HS256"}'
    with pytest.raises(jwt.InvalidJwt, match="duplicate"):
        jwt.verify(forge(header, {"response": RESPONSE}), SECRET)


@pytest.mark.parametrize(
    "payload", [b"[1,2]", b'"text"', b"null", b"{", b'{"a":NaN}', b"\xff\xfe", b"[" * 5000]
)
def test_claims_must_be_one_json_object(payload: bytes) -> None:
    with pytest.raises(jwt.InvalidJwt, match="claims"):
        jwt.verify(forge(HS256_HEADER, payload), SECRET)


# --- B7: the challenge response ---------------------------------------------------------------


def _off_by_one_byte(response: str, index: int) -> str:
    data = bytearray(b64std_decode(response))
    data[index] ^= 0x01
    return b64std(bytes(data))


def test_b7_wrong_first_and_last_byte_fail_alike() -> None:
    assert verify_authentication(answer_token(), SECRET, CHALLENGE).approved  # control
    failures = []
    for index in (0, 31):
        wrong = _off_by_one_byte(RESPONSE, index)
        assert not response_matches(SECRET, CHALLENGE, wrong)
        token = jwt.sign({"response": wrong}, SECRET)
        with pytest.raises(BadDeviceMessage) as caught:
            verify_authentication(token, SECRET, CHALLENGE)
        failures.append((caught.value.message, caught.value.status, caught.value.code))
    # The wire sees the same generic refusal either way: no oracle for the forger.
    assert failures[0] == failures[1] == (REFUSED, 400, "badRequest")


@pytest.mark.parametrize(
    "response",
    [
        RESPONSE.rstrip("="),  # unpadded
        RESPONSE.replace("+", "-").replace("/", "_"),  # URL alphabet
        RESPONSE.lower(),
        " " + RESPONSE,
        b64std(CHALLENGE),  # the challenge echoed back
        challenge_response(OTHER_SECRET, CHALLENGE),
        None,
        42,
        [RESPONSE],
    ],
    ids=["unpadded", "urlsafe", "lower", "space", "echo", "other-secret", "null", "int", "list"],
)
def test_b7_only_the_exact_response_string_passes(response: object) -> None:
    # AM compares the claim as a string with its own std-padded Base64 (spec §2).
    if isinstance(response, str) and response != RESPONSE:
        assert not response_matches(SECRET, CHALLENGE, response)
    with pytest.raises(BadDeviceMessage):
        verify_authentication(jwt.sign({"response": response}, SECRET), SECRET, CHALLENGE)


def test_b7_missing_response_is_refused() -> None:
    with pytest.raises(BadDeviceMessage):
        verify_authentication(jwt.sign({"deny": True}, SECRET), SECRET, CHALLENGE)


# --- B8: one secret, four message kinds ------------------------------------------------------

KINDS: dict[str, dict[str, object]] = {
    "register": {"response": RESPONSE, "mechanismUid": UID, **DEVICE},
    "authenticate": {"response": RESPONSE},
    "deny": {"response": RESPONSE, "deny": True},
    "number": {"response": RESPONSE, "challengeResponse": "43"},
    "refresh": dict(DEVICE),
    "refresh-ios": {"mechanismUid": UID, **DEVICE},
    "poll": poll_claims(UID, NOW_MS),
}
VERIFIERS: dict[str, Callable[[str], object]] = {
    # The register and authenticate challenges are the same on purpose: the worst case.
    "register": lambda token: verify_registration(token, SECRET, CHALLENGE),
    "authenticate": lambda token: verify_authentication(token, SECRET, CHALLENGE),
    "refresh": lambda token: verify_refresh(token, SECRET, UID),
    "poll": lambda token: verify_poll(token, SECRET, UID, NOW_MS, 60),
}
ACCEPTS = {
    "register": {"register"},
    "authenticate": {"authenticate", "deny", "number"},
    "refresh": {"refresh", "refresh-ios"},
    "poll": {"poll"},
}


@pytest.mark.parametrize("verifier", VERIFIERS)
@pytest.mark.parametrize("kind", KINDS)
def test_b8_claim_sets_are_mutually_exclusive(kind: str, verifier: str) -> None:
    token = jwt.sign(KINDS[kind], SECRET)
    if kind in ACCEPTS[verifier]:
        VERIFIERS[verifier](token)
    else:
        with pytest.raises(BadDeviceMessage) as caught:
            VERIFIERS[verifier](token)
        assert caught.value.message == REFUSED


def test_b8_authenticate_with_smuggled_device_id_is_refused() -> None:
    with pytest.raises(BadDeviceMessage, match=REFUSED):
        verify_authentication(answer_token(deviceId="attacker-token"), SECRET, CHALLENGE)


def test_b8_refresh_with_another_mechanism_uid_is_refused() -> None:
    token = jwt.sign({"mechanismUid": "someone-else", **DEVICE}, SECRET)
    with pytest.raises(BadDeviceMessage):
        verify_refresh(token, SECRET, UID)


@pytest.mark.parametrize("missing", ["deviceId", "deviceType", "communicationType"])
def test_register_needs_the_device_details(missing: str) -> None:
    claims = {k: v for k, v in KINDS["register"].items() if k != missing}
    with pytest.raises(BadDeviceMessage):
        verify_registration(jwt.sign(claims, SECRET), SECRET, CHALLENGE)


def test_register_device_name_is_optional() -> None:
    claims = {k: v for k, v in KINDS["register"].items() if k != "deviceName"}
    assert (
        verify_registration(jwt.sign(claims, SECRET), SECRET, CHALLENGE).device.device_name is None
    )


# --- size bounds ---------------------------------------------------------------------------------


def _token_of_length(length: int) -> str | None:
    # Each filler byte adds 4/3 characters; start just short of the target and walk up.
    for filler in range(length * 3 // 4 - 200, length):
        token = jwt.sign({"response": RESPONSE, "pad": "x" * filler}, SECRET)
        if len(token) >= length:
            return token if len(token) == length else None
    return None


def test_oversize_token_is_rejected_even_when_signed() -> None:
    at_limit = _token_of_length(jwt.MAX_JWT_CHARS) or _token_of_length(jwt.MAX_JWT_CHARS - 1)
    assert at_limit is not None
    assert jwt.verify(at_limit, SECRET)["response"] == RESPONSE
    over = jwt.sign({"response": RESPONSE, "pad": "x" * jwt.MAX_JWT_CHARS}, SECRET)
    with pytest.raises(jwt.InvalidJwt, match="too long"):
        jwt.verify(over, SECRET)


# --- the poll JWT: clock skew --------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-60, -1, 0, 1, 60])
def test_poll_iat_within_skew_is_accepted(offset: int) -> None:
    token = jwt.sign({"mechanismUid": UID, "iat": NOW_MS // 1000 + offset}, SECRET)
    verify_poll(token, SECRET, UID, NOW_MS, 60)


@pytest.mark.parametrize("offset", [-61, 61, -3600, 86400])
def test_poll_iat_outside_skew_is_refused(offset: int) -> None:
    token = jwt.sign({"mechanismUid": UID, "iat": NOW_MS // 1000 + offset}, SECRET)
    with pytest.raises(BadDeviceMessage):
        verify_poll(token, SECRET, UID, NOW_MS, 60)


@pytest.mark.parametrize("iat", [str(NOW_MS // 1000), float(NOW_MS // 1000), True, None, NOW_MS])
def test_poll_iat_must_be_integer_seconds(iat: object) -> None:
    # NOW_MS in milliseconds is the likely client bug: it must not pass as seconds.
    token = jwt.sign({"mechanismUid": UID, "iat": iat}, SECRET)
    with pytest.raises(BadDeviceMessage):
        verify_poll(token, SECRET, UID, NOW_MS, 60)


def test_poll_for_another_mechanism_is_refused() -> None:
    token = jwt.sign(poll_claims("another-uid", NOW_MS), SECRET)
    with pytest.raises(BadDeviceMessage):
        verify_poll(token, SECRET, UID, NOW_MS, 60)


# --- authenticate semantics: challengeResponse, deny, detail -------------------------------------


@pytest.mark.parametrize(
    ("value", "number"),
    [("43", 43), (43, 43), ("0", 0), ("007", 7), ("+12", 12), ("-5", -5), (None, None)],
)
def test_challenge_response_parses_like_integer_parse_int(
    value: object, number: int | None
) -> None:
    answer = verify_authentication(answer_token(challengeResponse=value), SECRET, CHALLENGE)
    assert answer.number == number
    assert answer.approved


def test_challenge_response_absent_is_none() -> None:
    assert verify_authentication(answer_token(), SECRET, CHALLENGE).number is None


@pytest.mark.parametrize(
    "value",
    [True, False, "", "abc", " 43", "43 ", "4 3", "4.3", 4.3, 43.0, "1e2", "0x2b", "٤٣", [43], {}],
)
def test_challenge_response_garbage_is_refused(value: object) -> None:
    with pytest.raises(BadDeviceMessage):
        verify_authentication(answer_token(challengeResponse=value), SECRET, CHALLENGE)


@pytest.mark.parametrize("deny", [True, False, None, "false", 0, {}])
def test_deny_present_means_deny(deny: object) -> None:
    # AM: the presence of `deny`, whatever its value, denies (spec §4.3).
    assert not verify_authentication(answer_token(deny=deny), SECRET, CHALLENGE).approved


def test_detail_is_optional_text() -> None:
    answer = verify_authentication(answer_token(detail="wrong login"), SECRET, CHALLENGE)
    assert answer.detail == "wrong login"
    with pytest.raises(BadDeviceMessage):
        verify_authentication(answer_token(detail=5), SECRET, CHALLENGE)
    with pytest.raises(BadDeviceMessage):
        verify_authentication(answer_token(detail="x" * 1025), SECRET, CHALLENGE)
