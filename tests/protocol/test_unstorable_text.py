"""`strict_json_object` refuses text no database can store (issue #6), wherever it sits: member
names, values, nested arrays and objects, and the claims of a JWT that verifies."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pushgate.protocol import jwt
from pushgate.protocol.encoding import b64url, compact_json, strict_json_object

SECRET = b"k" * 32
UNSTORABLE = [
    pytest.param(rb'{"a": "\u0000"}', id="nul-value"),
    pytest.param(rb'{"\u0000": 1}', id="nul-name"),
    pytest.param(rb'{"a": "x\ud800"}', id="high-surrogate"),
    pytest.param(rb'{"a": "\udc00x"}', id="low-surrogate"),
    pytest.param(rb'{"a": "\udc00\ud800"}', id="reversed-pair"),
    pytest.param(rb'{"a": [1, ["\ud800"]]}', id="nested-array"),
    pytest.param(rb'{"a": {"b": {"\udfff": null}}}', id="nested-name"),
    pytest.param(b'{"a": "\xff"}', id="invalid-utf8"),
    pytest.param(b'{"a": "\xed\xa0\x80"}', id="cesu-8-surrogate"),
    pytest.param(b'{"a": "\xc0\x80"}', id="overlong-nul"),
    pytest.param(b'{"a": "\x00"}', id="raw-nul"),
]


@pytest.mark.parametrize("data", UNSTORABLE)
def test_unstorable_text_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        strict_json_object(data)


def test_a_str_argument_is_checked_too() -> None:
    with pytest.raises(ValueError):
        strict_json_object('{"a": "\ud800"}')
    with pytest.raises(ValueError):
        strict_json_object('{"a": "\\u0000"}')


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (rb'{"a": "\ud83d\ude00"}', {"a": "\U0001f600"}),  # a pair is one character
        (rb'{"a": "\\u0000"}', {"a": "\\u0000"}),  # an escaped backslash, then text
        ('{"a": "é ✓ \U0001f600"}'.encode(), {"a": "é ✓ \U0001f600"}),
        (rb'{"a": "\u00e9\t"}', {"a": "é\t"}),
    ],
)
def test_storable_text_is_kept(data: bytes, expected: dict[str, object]) -> None:
    assert strict_json_object(data) == expected


def test_deep_nesting_is_checked_without_recursion() -> None:
    depth = 900
    data = b'{"a": ' + b"[" * depth + rb'"\ud800"' + b"]" * depth + b"}"
    with pytest.raises(ValueError):
        strict_json_object(data)


STORABLE = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))


@given(STORABLE)
def test_any_storable_text_round_trips_raw_or_escaped(text: str) -> None:
    for form in (compact_json(text), json.dumps(text, ensure_ascii=True)):
        assert strict_json_object(b'{"v": ' + form.encode() + b"}") == {"v": text}


def _signed(payload: bytes) -> str:
    signing_input = f"{b64url(compact_json(jwt.HEADER).encode())}.{b64url(payload)}"
    mac = hmac.new(SECRET, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


@pytest.mark.parametrize("data", UNSTORABLE)
def test_a_signed_jwt_with_unstorable_claims_does_not_verify(data: bytes) -> None:
    with pytest.raises(jwt.InvalidJwt, match="claims"):
        jwt.verify(_signed(data), SECRET)
