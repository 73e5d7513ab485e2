"""The key ring behind sealing (docs/KEYS.md): values name their key, the format from before
key ids still opens, a process learns a new key from its key file without a restart, and
`pushgate keys status|rotate` with a key file or PUSHGATE_SECRET_KEY, on both store adapters.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update

from pushgate.cli.main import cli
from pushgate.secret_key import KeyRingFile, write_key_ring
from pushgate.services import Services
from pushgate.settings import Settings, decode_key_ring
from pushgate.store import schema
from pushgate.store.sealing import Sealer, SealError, key_id, new_key, sealed_key_id
from tests.api.helpers import connect
from tests.support import TEST_SECRET_KEY

OLD = bytes(range(32))
NEW = bytes(range(32, 64))


def _legacy_seal(key: bytes, plaintext: bytes, context: str) -> bytes:
    """A value as pushgate sealed it before key ids (`\\x01 | nonce | ciphertext`)."""
    nonce = secrets.token_bytes(12)
    return b"\x01" + nonce + AESGCM(key).encrypt(nonce, plaintext, context.encode())


def test_values_name_their_key_and_any_key_of_the_ring_opens() -> None:
    old = Sealer(OLD)
    sealed = old.seal(b"secret", "devices/1")
    assert sealed_key_id(sealed) == key_id(OLD)
    ring = Sealer(NEW, OLD)
    assert ring.open(sealed, "devices/1") == b"secret"
    assert ring.needs_reseal(sealed)
    resealed = ring.seal(b"secret", "devices/1")
    assert sealed_key_id(resealed) == key_id(NEW) == ring.primary_id
    assert not ring.needs_reseal(resealed)
    with pytest.raises(SealError, match="PUSHGATE_SECRET_KEY"):
        old.open(resealed, "devices/1")  # the old key alone cannot open the new value


def test_values_from_before_key_ids_open_with_whichever_key_sealed_them() -> None:
    legacy = _legacy_seal(OLD, b"secret", "webhooks/w")
    assert sealed_key_id(legacy) is None
    ring = Sealer(NEW, OLD)
    assert ring.open(legacy, "webhooks/w") == b"secret"
    assert ring.needs_reseal(legacy)
    with pytest.raises(SealError):
        Sealer(NEW).open(legacy, "webhooks/w")
    with pytest.raises(SealError):
        ring.open(legacy, "webhooks/other")


def test_a_ring_refuses_duplicate_and_short_keys() -> None:
    with pytest.raises(ValueError, match="same id"):
        Sealer(OLD, OLD)
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(OLD, b"short")
    fresh = new_key([OLD, NEW])
    assert key_id(fresh) not in {key_id(OLD), key_id(NEW)}


def test_a_process_learns_a_new_key_from_its_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    write_key_ring(path, (OLD,))
    source = KeyRingFile(path, (OLD,), check_seconds=3600)
    server = Sealer(OLD, source=source)
    assert server.primary_id == key_id(OLD)

    write_key_ring(path, (NEW, OLD))  # what `keys rotate` does first
    other = Sealer(NEW, OLD).seal(b"s", "devices/9")
    # A value under a key it lacks makes it look at once, long before its next check.
    assert server.open(other, "devices/9") == b"s"
    assert server.primary_id == key_id(NEW)
    assert sealed_key_id(server.seal(b"s", "devices/9")) == key_id(NEW)
    assert os.stat(path).st_mode & 0o777 == 0o600

    path.write_text("not a key\n")  # a bad edit: the running process keeps its keys
    assert source(True) == (NEW, OLD)


def test_a_key_ring_in_settings() -> None:
    text = f"{base64.b64encode(NEW).decode()},{base64.b64encode(OLD).decode()}"
    assert decode_key_ring(text) == (NEW, OLD)
    assert decode_key_ring(text.replace(",", "\n# older\n")) == (NEW, OLD)
    assert decode_key_ring(text + ",nope") is None
    assert Settings(secret_key=text).secret_key == text


# the commands --------------------------------------------------------------------------------


def _run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"PUSHGATE_CONFIG": "", **env})


async def test_status_and_rotate_with_a_key_file(services: Services, tmp_path: Path) -> None:
    path = tmp_path / "ring.key"
    write_key_ring(path, (OLD,))
    url = services.settings.database_url
    env = {"PUSHGATE_DATABASE_URL": url, "PUSHGATE_SECRET_KEY_FILE": str(path)}
    # Secrets sealed the old way, as a database from before this version holds them.
    await services.webhooks.add("/", "https://rp.example.com/a")
    await _reseal_legacy(services, OLD)

    status = await anyio.to_thread.run_sync(_run, env, "keys", "status", "--json")
    assert status.exit_code == 0, status.output
    shown = json.loads(status.stdout)
    assert shown["tables"]["webhooks"] == {"legacy": 1}
    assert shown["rotating"] is True  # a value not under the sealing key
    assert shown["progress"] == 0.0

    # A rotation interrupted after the new key was written is finished, not started anew.
    write_key_ring(path, (NEW, OLD))
    rotated = await anyio.to_thread.run_sync(
        _run, env, "keys", "rotate", "--grace-seconds", "0", "--discard-retired", "--json"
    )
    assert rotated.exit_code == 0, rotated.output
    done = json.loads(rotated.stdout)
    assert done["started"] is False
    assert done["primary"] == f"{key_id(NEW):02x}"
    assert done["resealed"]["webhooks"] == 1
    assert done["retiredFile"] is None
    assert await anyio.Path(path).read_text() == base64.b64encode(NEW).decode() + "\n"
    assert not await anyio.Path(str(path) + ".retired").exists()

    text = await anyio.to_thread.run_sync(_run, env, "keys", "status")
    assert text.exit_code == 0, text.output
    assert f"1 of 1 sealed secrets are under {key_id(NEW):02x}" in text.stdout
    assert "rotation is under way" not in text.stdout


async def _reseal_legacy(services: Services, key: bytes) -> None:
    """Every webhook secret sealed again in the format from before key ids, under `key`."""
    webhooks = schema.webhooks
    async with connect(services) as conn:
        for webhook_id, secret in await conn.execute(select(webhooks.c.id, webhooks.c.secret)):
            context = f"webhooks/{webhook_id}"
            plain = Sealer(base64.b64decode(TEST_SECRET_KEY)).open(bytes(secret), context)
            await conn.execute(
                update(webhooks)
                .where(webhooks.c.id == webhook_id)
                .values(secret=_legacy_seal(key, plain, context))
            )
        await conn.commit()


async def test_rotate_with_the_key_in_the_environment(services: Services) -> None:
    url = services.settings.database_url
    await services.webhooks.add("/", "https://rp.example.com/b")
    single = {"PUSHGATE_DATABASE_URL": url, "PUSHGATE_SECRET_KEY": TEST_SECRET_KEY}
    refused = await anyio.to_thread.run_sync(_run, single, "keys", "rotate")
    assert refused.exit_code != 0
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "PUSHGATE_SECRET_KEY=NEW,OLD" in lines[0], refused.stderr

    ring = {**single, "PUSHGATE_SECRET_KEY": f"{base64.b64encode(NEW).decode()},{TEST_SECRET_KEY}"}
    rotated = await anyio.to_thread.run_sync(_run, ring, "keys", "rotate")
    assert rotated.exit_code == 0, rotated.output
    assert "remove the others from it" in rotated.stdout
    alone = {**single, "PUSHGATE_SECRET_KEY": base64.b64encode(NEW).decode()}
    status = await anyio.to_thread.run_sync(_run, alone, "keys", "status", "--json")
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["progress"] == 1.0


async def test_rotate_never_replaces_a_missing_key_file(services: Services, tmp_path: Path) -> None:
    await services.webhooks.add("/", "https://rp.example.com/c")  # sealed with the test key
    path = tmp_path / "gone.key"
    env = {
        "PUSHGATE_DATABASE_URL": services.settings.database_url,
        "PUSHGATE_SECRET_KEY_FILE": str(path),
    }
    result = await anyio.to_thread.run_sync(_run, env, "keys", "rotate")
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is missing" in lines[0], result.stderr
    assert not await anyio.Path(path).exists()
