"""Forged device JWTs at the HTTP level (security.md §9 B1-B10).

Every forgery is sent for each kind of device message (register, authenticate, refresh, pending)
and must get the one generic CREST 400 and leave the database exactly as it was. After the
forgeries, the honest message is sent and must succeed: it proves the refusals came from the
forgery and not from a broken set-up.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from functools import cache

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from sqlalchemy import select

from pushgate.protocol import jwt
from pushgate.protocol.challenge import challenge_response
from pushgate.protocol.device_messages import poll_claims
from pushgate.protocol.encoding import b64std, b64std_decode, b64url, b64url_decode, compact_json
from pushgate.services import Services
from pushgate.simulator import new_mechanism_uid
from pushgate.store import schema
from tests.api.helpers import REFUSED, Api, Phone, connect

KINDS = ["register", "authenticate", "refresh", "pending"]
HEADER: dict[str, object] = {"typ": "JWT", "alg": "HS256"}


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


# forging tools -------------------------------------------------------------------------------


def _segment(value: Mapping[str, object] | bytes) -> str:
    return b64url(value if isinstance(value, bytes) else compact_json(dict(value)).encode())


def hs(
    header: Mapping[str, object] | bytes,
    claims: Mapping[str, object] | bytes,
    key: bytes,
    digest: Callable[[], object] = hashlib.sha256,
) -> str:
    """A compact JWS with an HMAC signature over whatever header and payload bytes we like."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    mac = hmac.new(key, signing_input.encode(), digest).digest()  # type: ignore[arg-type]
    return f"{signing_input}.{b64url(mac)}"


@cache
def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def _ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _public_pem() -> bytes:
    return (
        _rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def asymmetric(alg: str, claims: Mapping[str, object]) -> str:
    """A genuine RS256 / PS256 / ES256 signature by a key the server has never seen."""
    signing_input = f"{_segment({'typ': 'JWT', 'alg': alg})}.{_segment(claims)}".encode()
    if alg == "RS256":
        signature = _rsa_key().sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        signature = _rsa_key().sign(signing_input, pss, hashes.SHA256())
    else:
        r, s = decode_dss_signature(_ec_key().sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input.decode()}.{b64url(signature)}"


def flip(segment: str, index: int) -> str:
    """Flip the lowest bit of one decoded byte and re-encode canonically."""
    data = bytearray(b64url_decode(segment))
    data[index] ^= 0x01
    return b64url(bytes(data))


def with_segment(token: str, position: int, segment: str) -> str:
    parts = token.split(".")
    parts[position] = segment
    return ".".join(parts)


# the four kinds of device message, each with an honest message to forge from --------------------


@dataclass
class Target:
    kind: str
    url: str
    secret: bytes
    claims: dict[str, object]
    fields: dict[str, str]  # the body without `jwt`
    api: Api
    key: str | None = None
    session_id: str | None = None

    def body(self, token: str) -> dict[str, str]:
        return {**self.fields, "jwt": token}

    def honest(self, **extra: object) -> str:
        return jwt.sign({**self.claims, **extra}, self.secret)

    async def refused(self, token: str, *, why: str = "") -> None:
        response = await self.api.post(self.url, self.body(token))
        assert (response.status_code, response.json()) == (400, REFUSED), (self.kind, why, token)

    async def accepted(self, token: str) -> None:
        response = await self.api.post(self.url, self.body(token))
        assert response.status_code == 200, (self.kind, response.text)
        if self.kind == "pending":
            assert len(response.json()["notifications"]) == 1
        else:
            assert response.content == b"{}"
        if self.kind == "authenticate":
            assert self.key is not None and self.session_id is not None
            assert await self.api.status(self.key, self.session_id) == "accepted"
        if self.kind == "register":
            uid = self.claims["mechanismUid"]
            assert await self.api.count("devices", mechanism_uid=uid) == 1


async def make_target(api: Api, kind: str) -> Target:
    await api.user("/", "alice")
    key = await api.key()
    phone = await api.register("/", "alice")
    session = await api.create_session(key, "alice")
    secret = phone.mechanism.secret
    uid = phone.mechanism.mechanism_uid
    if kind == "register":
        uri = await api.start("/", "alice")
        claims: dict[str, object] = {
            "response": challenge_response(uri.secret, uri.challenge),
            "mechanismUid": new_mechanism_uid(),
            "deviceId": "token-2",
            "deviceName": "second",
            "deviceType": "android",
            "communicationType": "gcm",
        }
        return Target(
            kind, uri.register_url, uri.secret, claims, {"messageId": uri.message_id}, api
        )
    if kind == "authenticate":
        push = await api.push(phone)
        claims = {"response": challenge_response(secret, b64std_decode(push.claims["c"]))}
        fields = {"messageId": push.message_id}
        return Target(kind, phone.authenticate_url, secret, claims, fields, api, key, session["id"])
    if kind == "refresh":
        claims = {
            "deviceId": "new-token",
            "deviceName": "renamed",
            "deviceType": "android",
            "communicationType": "gcm",
        }
        fields = {"mechanismUid": uid, "username": "alice"}
        return Target(kind, phone.refresh_url, secret, claims, fields, api)
    claims = dict(poll_claims(uid, api.now_ms()))
    return Target(kind, phone.pending_url, secret, claims, {"mechanismUid": uid}, api)


@pytest.fixture(params=KINDS)
async def target(request: pytest.FixtureRequest, api: Api) -> Target:
    return await make_target(api, request.param)


# B1 alg none ----------------------------------------------------------------------------------


async def test_b1_alg_none_is_refused(api: Api, target: Target) -> None:
    honest = target.honest()
    signature = honest.rsplit(".", 1)[1]
    before = await api.snapshot()

    for alg in ("none", "None", "NONE", ""):
        unsigned = f"{_segment({'typ': 'JWT', 'alg': alg})}.{_segment(target.claims)}"
        await target.refused(unsigned + ".", why=f"{alg!r} without signature")
        await target.refused(f"{unsigned}.{signature}", why=f"{alg!r} with a signature")
        await target.refused(unsigned, why=f"{alg!r} two segments")
    no_alg = f"{_segment({'typ': 'JWT'})}.{_segment(target.claims)}"
    await target.refused(no_alg + ".", why="no alg")
    await target.refused(hs({"typ": "JWT"}, target.claims, target.secret), why="no alg, MAC'd")

    assert await api.snapshot() == before
    await target.accepted(honest)


# B2 other algorithms --------------------------------------------------------------------------


async def test_b2_other_algorithms_are_refused(api: Api, target: Target) -> None:
    claims, secret = target.claims, target.secret
    pem = _public_pem()
    before = await api.snapshot()

    await target.refused(
        hs({**HEADER, "alg": "HS384"}, claims, secret, hashlib.sha384), why="HS384"
    )
    await target.refused(
        hs({**HEADER, "alg": "HS512"}, claims, secret, hashlib.sha512), why="HS512"
    )
    await target.refused(hs({**HEADER, "alg": "hs256"}, claims, secret), why="lower-case alg")
    # HS256 MAC'd with the HS384 header bytes: the header is part of the MAC input, the alg
    # still has to be refused.
    await target.refused(hs({**HEADER, "alg": "HS384"}, claims, secret), why="HS384 header")
    for alg in ("RS256", "PS256", "ES256"):
        await target.refused(asymmetric(alg, claims), why=alg)
    # Algorithm confusion: "RS256" (or HS256) MAC'd with the public key as the HMAC secret.
    await target.refused(hs({**HEADER, "alg": "RS256"}, claims, pem), why="RS256 MAC'd with PEM")
    await target.refused(hs(HEADER, claims, pem), why="HS256 with PEM")

    assert await api.snapshot() == before
    await target.accepted(target.honest())


# B3 someone else's secret ---------------------------------------------------------------------


async def test_b3_signed_with_another_devices_secret_is_refused(api: Api, target: Target) -> None:
    await api.user("/", "bob")
    bob = await api.register("/", "bob")
    alice_second = await api.register("/", "alice")  # another device of the same user
    other_qr = await api.start("/", "alice")  # another registration's secret
    before = await api.snapshot()

    for name, secret in (
        ("other user's device", bob.mechanism.secret),
        ("same user's other device", alice_second.mechanism.secret),
        ("another registration", other_qr.secret),
        ("empty key", b""),
        ("zero key", b"\x00" * 32),
    ):
        claims = dict(target.claims)
        if "response" in claims:
            # The forger knows the challenge (it is in the QR code or the push) and answers it
            # with the key it has.
            challenge = await _challenge(api, target)
            claims["response"] = challenge_response(secret, challenge)
        await target.refused(hs(HEADER, claims, secret), why=name)

    assert await api.snapshot() == before
    await target.accepted(target.honest())


async def _challenge(api: Api, target: Target) -> bytes:
    table = schema.registrations if target.kind == "register" else schema.notifications
    query = select(table.c.challenge).where(table.c.message_id == target.fields["messageId"])
    async with connect(api.services) as conn:
        return bytes((await conn.execute(query)).scalar_one())


# B4 tampering ---------------------------------------------------------------------------------


async def test_b4_any_flipped_bit_or_truncation_is_refused(api: Api, target: Target) -> None:
    honest = target.honest()
    header, payload, signature = honest.split(".")
    before = await api.snapshot()

    for position, segment in enumerate((header, payload, signature)):
        size = len(b64url_decode(segment))
        for index in sorted({0, 1, size // 2, size - 2, size - 1}):
            await target.refused(
                with_segment(honest, position, flip(segment, index)),
                why=f"bit flip in segment {position} byte {index}",
            )
    await target.refused(honest[:-1], why="signature one character short")
    await target.refused(honest[:-4], why="signature four characters short")
    await target.refused(with_segment(honest, 2, b64url(b64url_decode(signature)[:16])), why="half")
    await target.refused(f"{header}.{payload}.", why="empty signature")
    await target.refused(f"{header}.{payload}", why="two segments")
    await target.refused(f"{honest}.{signature}", why="four segments")
    await target.refused(f" {honest}", why="leading space")
    await target.refused(f"{honest}\n", why="trailing newline")

    assert await api.snapshot() == before
    await target.accepted(honest)


async def test_b4_non_canonical_base64_is_refused(api: Api, target: Target) -> None:
    # Find an honest token whose payload or signature uses '-' or '_' (an ignored extra claim
    # varies it), so that the standard-alphabet twin exists.
    honest = next(
        token
        for token in (target.honest(x=str(n)) for n in range(1000))
        if any(c in token.split(".", 1)[1] for c in "-_")
    )
    header, payload, signature = honest.split(".")
    standard = honest[: len(header) + 1] + honest[len(header) + 1 :].translate(
        str.maketrans("-_", "+/")
    )
    # A last character with different unused bits decodes to the same signature bytes.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(signature[-1]) ^ 1]
    before = await api.snapshot()

    await target.refused(standard, why="standard alphabet")
    for position, segment in enumerate((header, payload, signature)):
        padded = segment + "=" * (-len(segment) % 4 or 4)
        await target.refused(with_segment(honest, position, padded), why=f"padding {position}")
    assert base64.urlsafe_b64decode(signature[:-1] + twin + "=") == b64url_decode(signature)
    await target.refused(honest[:-1] + twin, why="non-canonical trailing bits")

    assert await api.snapshot() == before
    await target.accepted(honest)


# B5 header parameters -------------------------------------------------------------------------


@pytest.fixture
async def canary() -> AsyncIterator[tuple[str, list[str]]]:
    """A listening socket that records every connection: a fetched jku/x5u would show here."""
    seen: list[str] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(str(writer.get_extra_info("peername")))
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/keys", seen
    finally:
        server.close()
        await server.wait_closed()


async def test_b5_crit_is_refused_and_key_location_headers_are_ignored(
    api: Api, target: Target, canary: tuple[str, list[str]]
) -> None:
    url, seen = canary
    jwk = {"kty": "oct", "k": b64url(b"attacker key" * 3)}
    before = await api.snapshot()

    for crit in (["exp"], [], ["b64"], "exp"):
        header = {**HEADER, "crit": crit, "exp": 0, "b64": True}
        await target.refused(hs(header, target.claims, target.secret), why=f"crit {crit!r}")
    # A token that points to a key elsewhere and is MAC'd with that key.
    attacker = {**HEADER, "jwk": jwk, "jku": url, "x5u": url, "kid": "../../attacker"}
    await target.refused(hs(attacker, target.claims, b"attacker key" * 3), why="jwk key")
    await target.refused(hs({**HEADER, "typ": "JWE"}, target.claims, target.secret), why="typ")
    assert await api.snapshot() == before

    # With the device's own key the same headers change nothing: they are ignored.
    header = {**HEADER, "kid": "k1", "jku": url, "x5u": url, "jwk": jwk}
    await target.accepted(hs(header, target.claims, target.secret))
    await asyncio.sleep(0)
    assert seen == []


# B6 duplicate members -------------------------------------------------------------------------


def _with_duplicate(claims: dict[str, object], name: str, first: object) -> bytes:
    """A payload naming `name` twice: first `first`, then the honest value."""
    rest = {k: v for k, v in claims.items() if k != name}
    members = [f'"{name}":{json.dumps(first)}']
    members += [f"{json.dumps(k)}:{json.dumps(v)}" for k, v in rest.items()]
    members.append(f'"{name}":{json.dumps(claims[name])}')
    return ("{" + ",".join(members) + "}").encode()


async def test_b6_duplicate_members_are_refused(api: Api, target: Target) -> None:
    name = next(iter(target.claims))
    before = await api.snapshot()

    same = _with_duplicate(target.claims, name, target.claims[name])
    await target.refused(hs(HEADER, same, target.secret), why="same value twice")
    other = _with_duplicate(target.claims, name, "forged")
    await target.refused(hs(HEADER, other, target.secret), why="forged value first")
    header = b'{"typ":"JWT","alg":"none","alg":"HS256"}'
    await target.refused(hs(header, target.claims, target.secret), why="duplicate alg")
    not_object = compact_json([target.claims]).encode()
    await target.refused(hs(HEADER, not_object, target.secret), why="payload not an object")
    nan = compact_json(target.claims)[:-1].encode() + b',"n":NaN}'
    await target.refused(hs(HEADER, nan, target.secret), why="NaN in payload")

    assert await api.snapshot() == before
    await target.accepted(target.honest())


# B7 the challenge response --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["register", "authenticate"])
async def test_b7_wrong_response_is_refused_the_same_wherever_it_is_wrong(
    api: Api, kind: str
) -> None:
    target = await make_target(api, kind)
    honest = b64std_decode(str(target.claims["response"]))
    first_off = b64std(bytes([honest[0] ^ 1]) + honest[1:])
    last_off = b64std(honest[:-1] + bytes([honest[-1] ^ 1]))
    before = await api.snapshot()

    bodies = []
    for name, response in (
        ("first byte off", first_off),
        ("last byte off", last_off),
        ("urlsafe alphabet", b64url(honest)),
        ("unpadded", b64std(honest).rstrip("=")),
        ("hex", honest.hex()),
        ("empty", ""),
        ("null", None),
        ("number", 1),
        ("list", [b64std(honest)]),
    ):
        claims = {**target.claims, "response": response}
        result = await api.post(target.url, target.body(hs(HEADER, claims, target.secret)))
        bodies.append((name, result.status_code, result.content))
    without = {k: v for k, v in target.claims.items() if k != "response"}
    await target.refused(hs(HEADER, without, target.secret), why="no response")

    assert {(status, content) for _name, status, content in bodies} == {
        (400, compact_json(REFUSED).encode())
    }, bodies
    assert await api.snapshot() == before
    await target.accepted(target.honest())


# B8 type confusion ----------------------------------------------------------------------------


async def test_b8_a_captured_message_of_one_kind_is_refused_as_another(api: Api) -> None:
    await api.user("/", "alice")
    await api.allow_many_sessions()
    key = await api.key()
    phone = await api.register("/", "alice")
    uid = phone.mechanism.mechanism_uid
    first = await api.create_session(key, "alice")
    api.advance(1)
    second = await api.create_session(key, "alice")
    older, newer = await api.pending(phone)
    assert (await api.answer(phone, older)).status_code == 200
    captured = {
        "register": phone.registration["jwt"],
        "authenticate": api.answer_body(phone, older)["jwt"],
        "deny": api.answer_body(phone, older, approve=False)["jwt"],
        "refresh": jwt.sign(
            {"deviceId": "t2", "deviceType": "android", "communicationType": "gcm"},
            phone.mechanism.secret,
        ),
        "pending": jwt.sign(poll_claims(uid, api.now_ms()), phone.mechanism.secret),
    }
    targets = {
        "authenticate": (phone.authenticate_url, {"messageId": newer.message_id}),
        "refresh": (phone.refresh_url, {"mechanismUid": uid, "username": "alice"}),
        "pending": (phone.pending_url, {"mechanismUid": uid}),
    }
    before = await api.snapshot()

    for as_kind, (url, fields) in targets.items():
        for kind, token in captured.items():
            if kind == as_kind or (kind, as_kind) == ("deny", "authenticate"):
                continue
            response = await api.post(url, {**fields, "jwt": token})
            assert (response.status_code, response.json()) == (400, REFUSED), (kind, as_kind)

    assert await api.snapshot() == before
    assert await api.status(key, first["id"]) == "accepted"
    assert await api.status(key, second["id"]) == "sent"
    assert (await api.answer(phone, newer)).status_code == 200


# B9 someone else's message id -----------------------------------------------------------------


async def test_b9_a_message_id_of_another_user_or_device_is_refused(api: Api) -> None:
    await api.user("/", "alice")
    await api.user("/", "bob")
    key = await api.key()
    alice = await api.register("/", "alice")
    alice_tablet = await api.register("/", "alice")
    bob = await api.register("/", "bob")
    alice_session = await api.create_session(key, "alice")
    bob_session = await api.create_session(key, "bob")
    alice_push = await api.push(alice)
    tablet_push = await api.push(alice_tablet)
    bob_push = await api.push(bob)
    before = await api.snapshot()

    attempts: list[tuple[Phone, str, bytes]] = [
        # (signer, messageId answered, challenge answered)
        (alice, bob_push.message_id, b64std_decode(alice_push.claims["c"])),
        (alice, bob_push.message_id, b64std_decode(bob_push.claims["c"])),
        (bob, alice_push.message_id, b64std_decode(bob_push.claims["c"])),
        (alice, tablet_push.message_id, b64std_decode(alice_push.claims["c"])),
        (alice, tablet_push.message_id, b64std_decode(tablet_push.claims["c"])),
    ]
    for signer, message_id, challenge in attempts:
        for deny in (False, True):
            claims: dict[str, object] = {
                "response": challenge_response(signer.mechanism.secret, challenge)
            }
            if deny:
                claims["deny"] = True
            body = {"messageId": message_id, "jwt": jwt.sign(claims, signer.mechanism.secret)}
            response = await api.post(signer.authenticate_url, body)
            assert (response.status_code, response.json()) == (400, REFUSED), message_id

    assert await api.snapshot() == before
    assert (await api.answer(bob, bob_push, approve=False)).status_code == 200
    assert (await api.answer(alice_tablet, tablet_push)).status_code == 200
    assert await api.status(key, alice_session["id"]) == "accepted"
    assert await api.status(key, bob_session["id"]) == "rejected"


# B10 secret length ----------------------------------------------------------------------------


async def test_b10_registration_secrets_are_32_random_bytes(api: Api) -> None:
    await api.user("/", "alice")
    uris = [await api.start("/", "alice") for _ in range(20)]

    assert {len(uri.secret) for uri in uris} == {32}
    assert {len(uri.challenge) for uri in uris} == {32}
    assert len({uri.secret for uri in uris}) == 20
    assert len({uri.challenge for uri in uris}) == 20

    phone = await api.register("/", "alice")
    row = await api.device_row(phone.mechanism.mechanism_uid)
    # version and key id bytes + 12-byte nonce + the 32 secret bytes + 16-byte GCM tag
    assert len(bytes(row["secret"])) == 2 + 12 + 32 + 16
    assert phone.mechanism.secret not in bytes(row["secret"])
