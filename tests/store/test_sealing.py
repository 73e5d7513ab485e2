"""Device secrets sealed at rest, and where the sealing key comes from."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from pushgate.errors import ConfigError
from pushgate.settings import Settings
from pushgate.store.sealing import Sealer, SealError
from pushgate.wiring import load_secret_key

KEY = bytes(range(32))


def test_a_sealed_secret_opens_only_with_its_key_and_row() -> None:
    sealer = Sealer(KEY)
    sealed = sealer.seal(b"s" * 32, "devices/1")
    assert b"s" * 32 not in sealed
    assert sealer.open(sealed, "devices/1") == b"s" * 32
    assert sealer.seal(b"s" * 32, "devices/1") != sealed  # a fresh nonce every time
    with pytest.raises(SealError, match="PUSHGATE_SECRET_KEY"):
        Sealer(bytes(32)).open(sealed, "devices/1")
    with pytest.raises(SealError):
        sealer.open(sealed, "devices/2")  # moved to another row
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealError):
        sealer.open(tampered, "devices/1")
    with pytest.raises(SealError, match="not a sealed value"):
        sealer.open(b"s" * 32, "devices/1")  # a plain secret from before sealing


def test_the_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(b"short")


def test_key_from_settings(tmp_path: Path) -> None:
    settings = Settings(secret_key=base64.b64encode(KEY).decode(), secret_key_file="")
    assert load_secret_key(settings) == KEY
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ConfigError, match="PUSHGATE_SECRET_KEY"):
            load_secret_key(settings.model_copy(update={"secret_key": bad}))


def test_key_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "pushgate.key"
    settings = Settings(secret_key_file=str(path))
    first = load_secret_key(settings)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret_key(settings) == first
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_a_broken_key_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "pushgate.key"
    path.write_text("garbage\n")
    with pytest.raises(ConfigError, match=r"pushgate\.key"):
        load_secret_key(Settings(secret_key_file=str(path)))
    with pytest.raises(ConfigError, match="cannot create"):
        load_secret_key(Settings(secret_key_file=str(tmp_path / "missing-dir" / "k")))
