"""Published ForgeRock/PingAM vectors (spec forgerock-push.md §3.3, §9) against the protocol.

`vectors.json` is a copy of the shared spec file, so the suite runs from a bare clone; one test
checks the copy still matches the spec when the spec is around.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from pushgate.protocol import jwt, qr
from pushgate.protocol.challenge import challenge_response
from pushgate.protocol.device_messages import (
    verify_authentication,
    verify_registration,
)
from pushgate.protocol.encoding import b64std, b64std_decode, b64url, b64url_decode
from pushgate.protocol.push_payload import PushClaims, PushType, push_jwt

HERE = Path(__file__).resolve()
SPEC_VECTORS = HERE.parents[3] / "shared" / "spec" / "vectors.json"
VECTORS: dict[str, Any] = json.loads(HERE.with_name("vectors.json").read_text("utf-8"))

HEADER_SEGMENT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9"  # {"typ":"JWT","alg":"HS256"}

# QR example 1 / vector 1: the Android SDK's secret and registration challenge.
ANDROID_SECRET = b64std_decode("b3uYLkQ7dRPjBaIzV0t/aijoXRgMq+NP5AwVAvRfa/E=")
ANDROID_CHALLENGE = b64std_decode("9giiBAdUHjqpo0XE4YdZ7pRlv0hrQYwDz8Z1wwLLbkg=")
# QR example 2 / vector 2: the iOS SDK's secret (real AM messages).
IOS_SECRET = b64url_decode("-3xGWaKjfls_ZHFRnGeIvFHn--GxzjQyg1RVG_Pak1s")

QR_EXAMPLE_2 = (
    "pushauth://push/forgerock:pushtestuser?a=aHR0cDovL29wZW5hbS5leGFtcGxlLmNvbTo4MDgxL29wZW5hbS9q"
    "c29uL3B1c2gvc25zL21lc3NhZ2U_X2FjdGlvbj1hdXRoZW50aWNhdGU&b=519387&r=aHR0cDovL29wZW5hbS5leGFt"
    "cGxlLmNvbTo4MDgxL29wZW5hbS9qc29uL3B1c2gvc25zL21lc3NhZ2U_X2FjdGlvbj1yZWdpc3Rlcg&s=-3xGWaKjfls_"
    "ZHFRnGeIvFHn--GxzjQyg1RVG_Pak1s&c=esDK4G8eYce0_Gdf4p9XGGg2cIYYoxf6CTlL_O_1aF8&l=YW1sYmNvb2tp"
    "ZT0wMQ&m=REGISTER:593b6a92-f5c1-4ac0-a94a-a63e05451dd51589138620791&issuer=Rm9yZ2VSb2NrU2FuZG"
    "JveA"
)
QR_EXAMPLE_4 = (
    "pushauth://push/ForgeRock:bjensen?l=YW1sYmNvb2tpZT0wMQ&issuer=Rm9yZ2VSb2Nr&m=REGISTER:8be951c6"
    "-af83-438d-8f74-421bd18650421570561063169&s=b3uYLkQ7dRPjBaIzV0t_aijoXRgMq-NP5AwVAvRfa_E&c=9gi"
    "iBAdUHjqpo0XE4YdZ7pRlv0hrQYwDz8Z1wwLLbkg&r=aHR0cHM6Ly9hbS5leGFtcGxlLmNvbS9hbS9qc29uL3B1c2gvc"
    "25zL21lc3NhZ2U_X2FjdGlvbj1yZWdpc3Rlcg&a=aHR0cHM6Ly9hbS5leGFtcGxlLmNvbS9hbS9qc29uL3B1c2gvc25zL"
    "21lc3NhZ2U_X2FjdGlvbj1hdXRoZW50aWNhdGU&uid=YmplbnNlbg&pid=NTgxZGQzYzgtM2M2OS00OWFjLWIwMWEtMDc0"
    "NDUwYjIyNmM1&b=032b75"
)
EXAMPLE_4_URI = qr.RegistrationUri(
    issuer="ForgeRock",
    account="bjensen",
    secret=ANDROID_SECRET,
    challenge=ANDROID_CHALLENGE,
    message_id="REGISTER:8be951c6-af83-438d-8f74-421bd18650421570561063169",
    register_url="https://am.example.com/am/json/push/sns/message?_action=register",
    authenticate_url="https://am.example.com/am/json/push/sns/message?_action=authenticate",
    lb_cookie="amlbcookie=01",
    user_id="bjensen",
    device_profile_id="581dd3c8-3c69-49ac-b01a-074450b226c5",
)

# §9 item 4: the register JWT for QR example 4, claims in the order the simulator signs them.
REGISTER_JWT = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJyZXNwb25zZSI6IkRmMDJBd0EzUmErc1RHa0w1K1F2a0V0TjNlTGRa"
    "aUZtTDVueEFWMW0wazg9IiwibWVjaGFuaXNtVWlkIjoiYjE2MmIzMjUtZWJiMS00OGUwLThhYjctYjM4Y2YzNDFkYTk1"
    "IiwiZGV2aWNlSWQiOiJ0ZXN0RmNtVG9rZW4iLCJkZXZpY2VOYW1lIjoiUGl4ZWwgOCIsImRldmljZVR5cGUiOiJhbmRy"
    "b2lkIiwiY29tbXVuaWNhdGlvblR5cGUiOiJnY20ifQ.AtpZwe1f0pVYQw_xD-Q_D2dQUS9NDvT3KJZdQGEzi9Q"
)
REGISTER_CLAIMS = {
    "response": "Df02AwA3Ra+sTGkL5+QvkEtN3eLdZiFmL5nxAV1m0k8=",
    "mechanismUid": "b162b325-ebb1-48e0-8ab7-b38cf341da95",
    "deviceId": "testFcmToken",
    "deviceName": "Pixel 8",
    "deviceType": "android",
    "communicationType": "gcm",
}

# §9 item 5: an AM 8-style number-matching push.
CHALLENGE_PUSH_JWT = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJ1IjoiYjE2MmIzMjUtZWJiMS00OGUwLThhYjctYjM4Y2YzNDFkYTk1"
    "IiwibCI6IllXMXNZbU52YjJ0cFpUMHdNUT09IiwiYyI6ImZabDh3dTlKQnhkUlE3bWlxM2RFMGZiRjBCY2RkK2dSRVRV"
    "YnRsNnFTdU09IiwibSI6IkxvZ2luIGF0dGVtcHQgZnJvbSBiamVuc2VuIGF0IEZvcmdlUm9jayIsImsiOiJjaGFsbGVu"
    "Z2UiLCJpIjoiMTYyOTI2MTkwMjY2MCIsInQiOiIxMjAiLCJkIjoiYmplbnNlbiIsIm4iOiIzNCw0Myw1NyJ9.SiOk7i_r"
    "U75zmj5NJEQA9ryeoHUHCukvGIDFrJFnzTk"
)
CHALLENGE_PUSH = PushClaims(
    mechanism_uid="b162b325-ebb1-48e0-8ab7-b38cf341da95",
    challenge=b64std_decode("fZl8wu9JBxdRQ7miq3dE0fbF0Bcdd+gRETUbtl6qSuM="),
    lb_cookie="amlbcookie=01",
    ttl_seconds=120,
    created_ms=1629261902660,
    message="Login attempt from bjensen at ForgeRock",
    push_type=PushType.CHALLENGE,
    username="bjensen",
    numbers=(34, 43, 57),
)

# §9 item 2, third token: the first real-AM push plus "d":"user1" (header elided in the spec).
PUSH_WITH_USERNAME = (
    f"{HEADER_SEGMENT}.eyJjIjoibFltZmVQUzllYisrMWtpbzJJSUpBdHdVV1dDY1pDcytCU2dLUGpaS04yOD0iLCJ0Ijoi"
    "MTIwIiwidSI6Ijc1OUFDRTlELUM2NEItNDNFNi05ODFELTk3RjdCNTRDM0IwMSIsImwiOiJZVzFzWW1OdmIydHBaVDB3T"
    "VE9PSIsImQiOiJ1c2VyMSJ9.24GeB5p2tpHfgIIqtdAsGtRIb-L9kK3OBwFyX-ksHGg"
)


def test_vector_copy_matches_the_spec() -> None:
    if not SPEC_VECTORS.exists():
        pytest.skip(f"{SPEC_VECTORS} is not available outside the workspace")
    assert json.loads(SPEC_VECTORS.read_text("utf-8")) == VECTORS


@pytest.mark.parametrize("case", VECTORS["challenge_response"], ids=lambda c: c["source"])
def test_challenge_response(case: dict[str, str]) -> None:
    secret = b64std_decode(case["secret_b64"])
    challenge = b64std_decode(case["challenge_b64"])
    assert challenge_response(secret, challenge) == case["response_b64"]


@pytest.mark.parametrize("case", VECTORS["server_push_jwts"], ids=lambda c: c["source"])
def test_real_am_push_jwt_verifies(case: dict[str, Any]) -> None:
    secret = b64url_decode(case["secret_b64url"])
    claims = jwt.verify(case["jwt"], secret)
    assert claims == case["claims"]
    assert list(claims) == list(case["claims"])  # AM 13 key order, as sent
    response = challenge_response(secret, b64std_decode(claims["c"]))
    assert response == case["expected_device_response_b64"]


def test_real_am_push_with_username_verifies() -> None:
    claims = jwt.verify(PUSH_WITH_USERNAME, IOS_SECRET)
    assert claims["d"] == "user1"
    assert claims["u"] == "759ACE9D-C64B-43E6-981D-97F7B54C3B01"


@pytest.mark.parametrize("case", VECTORS["device_jwts"], ids=lambda c: c["what"])
def test_device_jwt_is_byte_exact(case: dict[str, Any]) -> None:
    secret = b64url_decode(case["secret_b64url"])
    assert jwt.sign(case["claims"], secret) == case["jwt"]
    assert jwt.verify(case["jwt"], secret) == case["claims"]


@pytest.mark.parametrize("case", VECTORS["device_jwts"], ids=lambda c: c["what"])
def test_device_answer_is_accepted_for_the_real_push(case: dict[str, Any]) -> None:
    # The answers in device_jwts reply to the first real-AM push.
    push = VECTORS["server_push_jwts"][0]
    secret = b64url_decode(case["secret_b64url"])
    challenge = b64std_decode(push["claims"]["c"])
    answer = verify_authentication(case["jwt"], secret, challenge)
    assert answer.approved is (case["what"] == "accept")
    assert answer.number is None


@pytest.mark.parametrize("case", VECTORS["registration_uris"], ids=lambda c: c["source"])
def test_registration_uri(case: dict[str, Any]) -> None:
    uri = qr.parse(case["uri"])
    expect = case["expect"]
    assert uri.issuer == expect["issuer"]
    assert uri.account == expect["account"]
    assert uri.register_url == expect["register_url"]
    assert b64std(uri.secret) == expect["secret_b64"]
    assert b64std(uri.challenge) == expect["challenge_b64"]
    assert uri.lb_cookie == expect["cookie"]
    assert challenge_response(uri.secret, uri.challenge) == expect["register_response_b64"]


def test_qr_example_1_details() -> None:
    uri = qr.parse(VECTORS["registration_uris"][0]["uri"])
    assert uri.authenticate_url == (
        "http://dev.openam.example.com:8081/openam/json/dev/push/sns/message?_action=authenticate"
    )
    assert uri.message_id == "REGISTER:8be951c6-af83-438d-8f74-421bd18650421570561063169"
    assert uri.background == "519387"
    assert uri.user_id is None
    assert uri.device_profile_id is None


def test_qr_example_2() -> None:
    uri = qr.parse(QR_EXAMPLE_2)
    assert (uri.issuer, uri.account) == ("ForgeRockSandbox", "pushtestuser")
    assert uri.register_url == (
        "http://openam.example.com:8081/openam/json/push/sns/message?_action=register"
    )
    assert uri.authenticate_url == (
        "http://openam.example.com:8081/openam/json/push/sns/message?_action=authenticate"
    )
    assert uri.secret == IOS_SECRET
    assert b64std(uri.secret) == "+3xGWaKjfls/ZHFRnGeIvFHn++GxzjQyg1RVG/Pak1s="
    assert uri.lb_cookie == "amlbcookie=01"
    assert uri.message_id == "REGISTER:593b6a92-f5c1-4ac0-a94a-a63e05451dd51589138620791"
    # §9 item 3: the registration response for this QR code.
    assert challenge_response(uri.secret, uri.challenge) == (
        "GegEYE/KfWEqf6+vFjQ4E+xpe1EZDlZasKxxa1mdbys="
    )


def test_qr_example_3_response_and_realm_path() -> None:
    # The captured JS-SDK URI elides `a`, so only its s, c and r are usable.
    secret = b64url_decode("FoxEr5uAzrys1yBmuygPbxrVjysElmzsmqifi6eO_AI")
    challenge = b64url_decode("XD-MxsK2sRGa7sUw7kinSKoUDf_eNYMZUV2f0z5kjgw")
    assert challenge_response(secret, challenge) == "tQXvo+ceF3p7tKuWtZ6YAGxDscBUX99U2yBqVGT3EOU="
    register_url = b64url_decode(
        "aHR0cHM6Ly9vcGVuYW0tZm9yZ2Vycm9jay1zZGtzLmZvcmdlYmxvY2tzLmNvbTo0NDMvYW0vanNvbi9hbHBoYS9wdXNo"
        "L3Nucy9tZXNzYWdlP19hY3Rpb249cmVnaXN0ZXI"
    ).decode()
    assert (
        register_url
        == qr.push_endpoint("https://openam-forgerrock-sdks.forgeblocks.com:443/am", "/alpha")
        + "?_action=register"
    )


def test_qr_example_4_parses() -> None:
    assert qr.parse(QR_EXAMPLE_4) == EXAMPLE_4_URI


def test_qr_example_4_is_what_build_emits() -> None:
    # AM 8's parameter order (spec §3.1), byte for byte.
    assert qr.build(EXAMPLE_4_URI) == QR_EXAMPLE_4
    assert str(EXAMPLE_4_URI) == QR_EXAMPLE_4


def test_qr_build_parse_round_trip_of_a_sub_realm_uri() -> None:
    endpoint = qr.push_endpoint("https://login.example.org/am", "/alpha")
    uri = qr.RegistrationUri(
        issuer="Example Bank",
        account="Justin Lowery",
        secret=bytes(range(32)),
        challenge=bytes(range(32, 64)),
        message_id="REGISTER:53b85112-8ba9-4b7e-9107-ecbca2d65f7b1695151603616",
        register_url=endpoint + "?_action=register",
        authenticate_url=endpoint + "?_action=authenticate",
        lb_cookie="amlbcookie=01",
    )
    text = qr.build(uri)
    assert text.startswith("pushauth://push/Example%20Bank:Justin%20Lowery?l=")
    assert qr.parse(text) == uri


def test_register_jwt_is_byte_exact() -> None:
    # §9 item 4; the key order is part of the byte form.
    assert jwt.sign(REGISTER_CLAIMS, ANDROID_SECRET) == REGISTER_JWT
    registration = verify_registration(REGISTER_JWT, ANDROID_SECRET, ANDROID_CHALLENGE)
    assert registration.mechanism_uid == REGISTER_CLAIMS["mechanismUid"]
    assert registration.device.device_id == "testFcmToken"
    assert registration.device.device_name == "Pixel 8"
    assert (registration.device.device_type, registration.device.communication_type) == (
        "android",
        "gcm",
    )


def test_challenge_push_jwt_is_byte_exact() -> None:
    assert push_jwt(CHALLENGE_PUSH, ANDROID_SECRET) == CHALLENGE_PUSH_JWT
    claims = jwt.verify(CHALLENGE_PUSH_JWT, ANDROID_SECRET)
    assert claims["n"] == "34,43,57"
    assert all(isinstance(value, str) for value in claims.values())
    assert challenge_response(ANDROID_SECRET, b64std_decode(claims["c"])) == (
        "Eg6eGR3hEb5qMAc7CThAcJx6LkUNHh8Ukxj69wRYrlc="
    )


def test_header_segment_suits_legacy_ios() -> None:
    # iOS re-pads the header and decodes it with standard Base64 (spec §5.3).
    header = jwt.sign({}, ANDROID_SECRET).split(".")[0]
    assert header == HEADER_SEGMENT
    assert len(header) % 4 == 0
    assert "-" not in header and "_" not in header


def test_signature_is_hmac_over_the_signing_input() -> None:
    # §9 item 6 (Android testShouldSignJWTCorrectly).
    header, payload, signature = REGISTER_JWT.split(".")
    mac = hmac.new(ANDROID_SECRET, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert signature == b64url(mac)
