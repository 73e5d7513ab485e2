"""The sealed authId (journeys/auth_id.py): it opens only unchanged, in its realm and tree,
before its expiry, and each seal has its own step id."""

from __future__ import annotations

import base64

import pytest

from pushgate.journeys.auth_id import MAX_AUTH_ID_CHARS, AuthIds, ExpiredAuthId, InvalidAuthId
from pushgate.journeys.callbacks import InputKind
from pushgate.journeys.state import JourneyState
from pushgate.store.sealing import Sealer

KEY = bytes(range(32))
NOW = 1_700_000_000_000
STATE = JourneyState(
    realm="/alpha",
    tree="PushAuthentication",
    node="push-wait",
    started_ms=NOW - 5_000,
    shared={"username": "alice", "pushMessageId": "s-1", "push-wait.waitUntil": NOW + 5000},
    shown=(("PollingWaitCallback", InputKind.NONE), ("ConfirmationCallback", InputKind.INDEX)),
)


def test_round_trip_keeps_the_state_and_hides_it() -> None:
    ids = AuthIds(KEY)
    auth_id = ids.seal(STATE, NOW, 60_000)
    assert ids.open(auth_id, "/alpha", "PushAuthentication", NOW + 59_999) == STATE
    assert ids.open(auth_id, "/alpha", None, NOW) == STATE  # no tree named: any tree
    assert b"alice" not in _raw(auth_id)
    assert set(auth_id) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_each_seal_has_its_own_step_id() -> None:
    ids = AuthIds(KEY)
    first = ids.open_step(ids.seal(STATE, NOW, 60_000), "/alpha", None, NOW)
    second = ids.open_step(ids.seal(STATE, NOW, 60_000), "/alpha", None, NOW)
    assert first.step_id != second.step_id and len(first.step_id) == 32
    assert first.expires_ms == NOW + 60_000


def test_expired() -> None:
    ids = AuthIds(KEY)
    auth_id = ids.seal(STATE, NOW, 60_000)
    with pytest.raises(ExpiredAuthId) as caught:
        ids.open(auth_id, "/alpha", None, NOW + 60_000)
    assert caught.value.status == 401 and isinstance(caught.value, InvalidAuthId)


def test_other_realm_and_other_tree() -> None:
    ids = AuthIds(KEY)
    auth_id = ids.seal(STATE, NOW, 60_000)
    with pytest.raises(InvalidAuthId):
        ids.open(auth_id, "/", None, NOW)
    with pytest.raises(InvalidAuthId):
        ids.open(auth_id, "/alpha", "Other", NOW)


def test_another_key_does_not_open_it() -> None:
    auth_id = AuthIds(KEY).seal(STATE, NOW, 60_000)
    with pytest.raises(InvalidAuthId):
        AuthIds(bytes(32)).open(auth_id, "/alpha", None, NOW)


def test_the_key_is_not_the_device_sealing_key() -> None:
    """HKDF separates the two uses: a device secret's seal never opens as an authId."""
    sealed = Sealer(KEY).seal(STATE.to_json().encode(), "/alpha")
    text = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()
    with pytest.raises(InvalidAuthId):
        AuthIds(KEY).open(text, "/alpha", None, NOW)


def _raw(auth_id: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(auth_id + "=" * (-len(auth_id) % 4)))


@pytest.mark.parametrize("position", [0, 1, 13, 30, 60, -1])
def test_every_changed_byte_is_refused(position: int) -> None:
    """Version, nonce, sealed header, state and tag: a flipped bit anywhere is refused."""
    ids = AuthIds(KEY)
    raw = _raw(ids.seal(STATE, NOW, 60_000))
    raw[position] ^= 0x01
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(InvalidAuthId):
        ids.open(tampered, "/alpha", None, NOW)


@pytest.mark.parametrize(
    "junk", ["", "not base64 at all!", "AQ", "x" * (MAX_AUTH_ID_CHARS + 1), "é" * 40]
)
def test_junk_is_refused(junk: str) -> None:
    with pytest.raises(InvalidAuthId):
        AuthIds(KEY).open(junk, "/alpha", None, NOW)
