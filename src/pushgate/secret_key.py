"""The server key that seals device secrets at rest (`store/sealing.py`): from
PUSHGATE_SECRET_KEY, else from its key file, created on first start."""

from __future__ import annotations

import base64
import logging
import os
import secrets
from pathlib import Path

from pushgate.errors import ConfigError
from pushgate.settings import Settings
from pushgate.store.sealing import KEY_BYTES

log = logging.getLogger("pushgate")


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{where} must hold {KEY_BYTES} bytes in standard Base64")
    return key


def load_secret_key(settings: Settings) -> bytes:
    """The key that seals device secrets: from settings, else from its file, made if absent."""
    if settings.secret_key:
        return _decode_key(settings.secret_key, "PUSHGATE_SECRET_KEY")
    path = Path(settings.secret_key_file)
    if not path.exists():
        _create_key_file(path)
    try:
        return _decode_key(path.read_text(encoding="ascii"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the secret key file {path}: {exc}") from exc


def _create_key_file(path: Path) -> None:
    """Write a new key next to the database, readable by its owner only. The link makes the
    creation atomic: of two processes starting at once, one key wins and both read it."""
    key = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(key)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return
        log.warning(
            "created a new secret key; back it up with the database",
            extra={"fields": {"path": str(path)}},
        )
    except OSError as exc:
        raise ConfigError(f"cannot create the secret key file {path}: {exc}") from exc
    finally:
        temporary.unlink(missing_ok=True)
