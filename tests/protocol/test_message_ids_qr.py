"""Message ids (spec §3.2, §11.3) and `pushauth://` registration URIs (spec §3, §11.2)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pushgate.errors import BadDeviceMessage
from pushgate.protocol import qr
from pushgate.protocol.device_messages import parse_message_request
from pushgate.protocol.encoding import b64std, b64url
from pushgate.protocol.message_ids import (
    MAX_MESSAGE_ID_CHARS,
    MessageId,
    MessageKind,
    new_message_id,
    parse_message_id,
)

AM_UUID = "8be951c6-af83-438d-8f74-421bd1865042"
AM_REGISTER_ID = f"REGISTER:{AM_UUID}1570561063169"

# --- message ids -----------------------------------------------------------------------------


def test_am_register_id_parses() -> None:
    parsed = parse_message_id(AM_REGISTER_ID)
    assert parsed == MessageId(MessageKind.REGISTER, AM_UUID, 1570561063169)
    assert str(parsed) == AM_REGISTER_ID


@pytest.mark.parametrize("kind", list(MessageKind))
def test_new_message_id(kind: MessageKind) -> None:
    text = new_message_id(kind, 1_790_000_000_123)
    assert text.startswith(f"{kind}:")
    parsed = parse_message_id(text)
    assert (parsed.kind, parsed.epoch_ms) == (kind, 1_790_000_000_123)
    assert uuid.UUID(parsed.uuid).version == 4
    assert parsed.uuid == parsed.uuid.lower()


def test_new_message_ids_are_unique() -> None:
    assert len({new_message_id(MessageKind.AUTHENTICATE, 0) for _ in range(200)}) == 200


@given(
    st.sampled_from(list(MessageKind)),
    st.uuids(version=4),
    st.integers(min_value=0, max_value=10**15 - 1),
)
def test_message_id_round_trip(kind: MessageKind, value: uuid.UUID, epoch_ms: int) -> None:
    message_id = MessageId(kind, str(value), epoch_ms)
    assert parse_message_id(str(message_id)) == message_id


@pytest.mark.parametrize(
    "text",
    [
        "",
        "REGISTER:",
        f"REGISTER:{AM_UUID}",  # no time
        f"register:{AM_UUID}1570561063169",
        f"AUTH:{AM_UUID}1570561063169",
        f"REGISTER:{AM_UUID.upper()}1570561063169",
        f"REGISTER:{AM_UUID.replace('-', '')}1570561063169",
        f"REGISTER:{AM_UUID}1570561063169x",
        f"REGISTER:{AM_UUID}{'1' * 16}",
        f" REGISTER:{AM_UUID}1570561063169",
        f"REGISTER:{AM_UUID}1570561063169\n",
        f"AUTHENTICATE:REGISTER:{AM_UUID}1570561063169",
        f"REGISTER:{AM_UUID}-1",
        "REGISTER:" + "a" * MAX_MESSAGE_ID_CHARS,
    ],
)
def test_malformed_message_ids_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_message_id(text)


@pytest.mark.parametrize("value", [None, 42, b"REGISTER:x", ["REGISTER"]])
def test_message_id_must_be_a_string(value: object) -> None:
    with pytest.raises(ValueError):
        parse_message_id(value)


def test_kind_comes_from_the_prefix_not_the_url() -> None:
    # AM routes on the prefix (spec §4.2 step 1); the body parser keeps it.
    request = parse_message_request({"messageId": AM_REGISTER_ID, "jwt": "x", "extra": 1})
    assert request.message_id.kind is MessageKind.REGISTER
    auth = AM_REGISTER_ID.replace("REGISTER", "AUTHENTICATE")
    assert parse_message_request({"messageId": auth, "jwt": "x"}).message_id.kind is (
        MessageKind.AUTHENTICATE
    )


@pytest.mark.parametrize(
    "body",
    [
        {"jwt": "x"},
        {"messageId": AM_REGISTER_ID},
        {"messageId": AM_REGISTER_ID, "jwt": ""},
        {"messageId": AM_REGISTER_ID, "jwt": 5},
        {"messageId": "nonsense", "jwt": "x"},
        {"messageId": 7, "jwt": "x"},
    ],
)
def test_message_request_shape(body: dict[str, object]) -> None:
    with pytest.raises(BadDeviceMessage):
        parse_message_request(body)


# --- registration URIs ------------------------------------------------------------------------

ENDPOINT = "https://am.example.com/am/json/push/sns/message"
URI = qr.RegistrationUri(
    issuer="ForgeRock",
    account="bjensen",
    secret=bytes(range(32)),
    challenge=bytes(range(100, 132)),
    message_id=AM_REGISTER_ID,
    register_url=f"{ENDPOINT}?_action=register",
    authenticate_url=f"{ENDPOINT}?_action=authenticate",
    lb_cookie="amlbcookie=01",
)


def _params(text: str) -> list[tuple[str, str]]:
    query = text.split("?", 1)[1]
    return [(k, v) for k, _, v in (pair.partition("=") for pair in query.split("&"))]


def _without(text: str, key: str) -> str:
    head = text.split("?", 1)[0]
    return head + "?" + "&".join(f"{k}={v}" for k, v in _params(text) if k != key)


def _with(text: str, key: str, value: str) -> str:
    head = text.split("?", 1)[0]
    pairs = [(k, value if k == key else v) for k, v in _params(text)]
    return head + "?" + "&".join(f"{k}={v}" for k, v in pairs)


def test_build_emits_am8_order_and_base64url() -> None:
    text = qr.build(URI)
    assert text.startswith("pushauth://push/ForgeRock:bjensen?")
    assert [k for k, _ in _params(text)] == ["l", "issuer", "m", "s", "c", "r", "a", "b"]
    params = dict(_params(text))
    assert params["s"] == b64url(URI.secret)
    assert params["m"] == AM_REGISTER_ID  # raw, ':' included
    assert "=" not in "".join(v for k, v in _params(text) if k not in ("m", "b"))


def test_optional_uid_and_pid_are_emitted_when_known() -> None:
    uri = replace(URI, user_id="bjensen")
    params = dict(_params(qr.build(uri)))
    assert params["uid"] == b64url(b"bjensen")
    assert "pid" not in params


@pytest.mark.parametrize(("issuer", "account"), [("For:geRock", "bjensen"), ("ForgeRock", "a:b")])
def test_build_refuses_a_colon_in_the_label(issuer: str, account: str) -> None:
    with pytest.raises(ValueError, match=":"):
        qr.build(replace(URI, issuer=issuer, account=account))


def test_label_is_percent_escaped_and_decoded() -> None:
    uri = replace(URI, issuer="Example Bank", account="Justin Lowery")
    text = qr.build(uri)
    assert text.startswith("pushauth://push/Example%20Bank:Justin%20Lowery?")
    assert qr.parse(text) == uri


def test_issuer_param_wins_over_the_label() -> None:
    # AM <= 7.2 wrote the literal `forgerock` in the label (spec §3.1).
    text = qr.build(URI).replace("push/ForgeRock:", "push/forgerock:")
    assert qr.parse(text).issuer == "ForgeRock"
    assert qr.parse(_without(text, "issuer")).issuer == "forgerock"
    assert qr.parse(_with(text, "issuer", "")).issuer == "forgerock"


def test_label_without_issuer() -> None:
    text = _without(qr.build(URI).replace("push/ForgeRock:bjensen", "push/bjensen"), "issuer")
    parsed = qr.parse(text)
    assert (parsed.issuer, parsed.account) == ("", "bjensen")


def test_optional_params_default() -> None:
    text = _without(_without(qr.build(URI), "l"), "b")
    parsed = qr.parse(text)
    assert parsed.lb_cookie == ""
    assert parsed.background == qr.DEFAULT_BACKGROUND
    assert parsed.user_id is None and parsed.device_profile_id is None


@pytest.mark.parametrize("key", ["s", "c", "r", "a", "m"])
def test_required_params(key: str) -> None:
    text = qr.build(URI)
    with pytest.raises(ValueError, match=f"missing parameters: {key}$"):
        qr.parse(_without(text, key))
    with pytest.raises(ValueError, match=f"missing parameters: {key}$"):
        qr.parse(_with(text, key, ""))


def test_register_url_must_carry_action_register() -> None:
    # Android derives the refresh URL by rewriting `_action=register` (spec §3.2).
    text = _with(qr.build(URI), "r", b64url(f"{ENDPOINT}?_action=authenticate".encode()))
    with pytest.raises(ValueError, match="_action=register"):
        qr.parse(text)


@pytest.mark.parametrize("key", ["s", "c"])
@pytest.mark.parametrize("variant", ["std-padded", "padded-url", "junk"])
def test_binary_params_must_be_unpadded_base64url(key: str, variant: str) -> None:
    raw = URI.secret if key == "s" else URI.challenge
    value = {
        "std-padded": b64std(raw),
        "padded-url": b64url(raw) + "=",
        "junk": b64url(raw)[:-1] + "!",
    }[variant]
    with pytest.raises(ValueError):
        qr.parse(_with(qr.build(URI), key, value))


def test_std_alphabet_secret_is_rejected() -> None:
    # A secret whose base64url has '-' or '_': the std form has '+' or '/' instead.
    secret = bytes([0xFB, 0xFF] * 16)
    assert "-" in b64url(secret) or "_" in b64url(secret)
    text = _with(qr.build(URI), "s", b64url(secret).replace("-", "+").replace("_", "/"))
    with pytest.raises(ValueError):
        qr.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "otpauth://totp/ForgeRock:bjensen?secret=ABC",
        "mfauth://totp/ForgeRock:bjensen?s=x",
        "pushauth://totp/ForgeRock:bjensen?s=x",
        "https://push/ForgeRock:bjensen",
        "",
    ],
)
def test_other_uris_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        qr.parse(text)


@pytest.mark.parametrize(
    ("base", "realm", "endpoint"),
    [
        ("https://am.example.com/am", "/", "https://am.example.com/am/json/push/sns/message"),
        (
            "https://am.example.com/am",
            "/alpha",
            "https://am.example.com/am/json/alpha/push/sns/message",
        ),
    ],
)
def test_push_endpoint(base: str, realm: str, endpoint: str) -> None:
    assert qr.push_endpoint(base, realm) == endpoint


LABEL_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters=":"), max_size=20)


@st.composite
def registration_uris(draw: st.DrawFn) -> qr.RegistrationUri:
    host = draw(st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,6}){1,2}", fullmatch=True))
    realm = draw(st.sampled_from(["/", "/alpha", "/bravo"]))
    endpoint = qr.push_endpoint(f"https://{host}/am", realm)
    optional = st.none() | st.text(st.characters(exclude_categories=["Cs"]), min_size=1)
    return qr.RegistrationUri(
        issuer=draw(LABEL_TEXT),
        account=draw(LABEL_TEXT),
        secret=draw(st.binary(min_size=32, max_size=64)),
        challenge=draw(st.binary(min_size=32, max_size=32)),
        message_id=str(
            MessageId(
                MessageKind.REGISTER,
                str(draw(st.uuids(version=4))),
                draw(st.integers(0, 10**15 - 1)),
            )
        ),
        register_url=f"{endpoint}?_action=register",
        authenticate_url=f"{endpoint}?_action=authenticate",
        lb_cookie=draw(st.text(st.characters(exclude_categories=["Cs"]), max_size=30)),
        user_id=draw(optional),
        device_profile_id=draw(st.none() | st.uuids().map(str)),
        background=draw(st.from_regex(r"[0-9a-f]{6}", fullmatch=True)),
    )


@given(registration_uris())
def test_build_parse_round_trip(uri: qr.RegistrationUri) -> None:
    text = qr.build(uri)
    assert qr.parse(text) == uri
    # Values are never percent-encoded, so the query has only base64url, ids and hex.
    query = text.split("?", 1)[1]
    assert "%" not in query and "+" not in query and "/" not in query
