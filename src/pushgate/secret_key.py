"""The server key that seals device secrets at rest (`store/sealing.py`): where every process
of one deployment finds it (docs/CONFIGURATION.md "The secret key").

PUSHGATE_SECRET_KEY, else the file PUSHGATE_SECRET_KEY_FILE (relative to the working
directory), else a default that depends on the database and never on the working directory:
beside a SQLite file (`pushgate.db` → `pushgate.key`), or `$XDG_CONFIG_HOME/pushgate/secret.key`
for PostgreSQL. A command run from another directory thus finds the key the server uses
instead of minting a new one that no device secret opens.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from pushgate.errors import ConfigError
from pushgate.settings import SECRET_KEY_BYTES, SECRET_KEY_FORM, Settings, decode_secret_key
from pushgate.store.engine import is_postgres, sqlite_path

log = logging.getLogger("pushgate")


def key_location(
    settings: Settings, configured: str, name: str, beside: Callable[[Path], Path]
) -> Path | None:
    """Where a key file of the deployment lives: the configured path; for PostgreSQL `name`
    in the user's config folder; for SQLite `beside(the database file)`, so that a command
    run from another folder finds it; None for a database in memory (nothing outlives it)."""
    if configured:
        return Path(configured)
    if is_postgres(settings.database_url):
        return settings.config_home / "pushgate" / name
    database = sqlite_path(settings.database_url)
    if database == ":memory:" or database.startswith("file::memory:"):
        return None
    return beside(Path(database).absolute())


def _beside(database: Path) -> Path:
    if database.suffix == ".key":
        return database.with_name(database.name + ".key")
    return database.with_suffix(".key")


def key_file(settings: Settings) -> Path | None:
    """The file the key is read from (and created in), None when there is none to use:
    the key is in PUSHGATE_SECRET_KEY, or the database lives in memory only."""
    if settings.secret_key:
        return None
    return key_location(settings, settings.secret_key_file, "secret.key", _beside)


def key_source(settings: Settings) -> str:
    """Where the key comes from, for messages: the variable, or the file and why that one."""
    if settings.secret_key:
        return "PUSHGATE_SECRET_KEY"
    path = key_file(settings)
    if path is None:
        return "a key made for this in-memory database"
    if settings.secret_key_file:
        return f"the key file {path.absolute()} (PUSHGATE_SECRET_KEY_FILE)"
    place = (
        "the default for PostgreSQL"
        if is_postgres(settings.database_url)
        else "beside the database"
    )
    return f"the key file {path} ({place})"


def load_secret_key(settings: Settings) -> bytes:
    """The key that seals device secrets: from settings, else from its file, made if absent.
    The CLI makes sure the database holds no sealed secret before a new file is made."""
    if settings.secret_key:
        key = decode_secret_key(settings.secret_key)
        if key is None:
            raise ConfigError(f"PUSHGATE_SECRET_KEY must be {SECRET_KEY_FORM}")
        return key
    path = key_file(settings)
    if path is None:  # nothing outlives the process: neither may its key
        return secrets.token_bytes(SECRET_KEY_BYTES)
    if not path.exists():
        create_key_file(path, make_parent=not settings.secret_key_file)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not Base64 text"
        raise ConfigError(f"cannot read the secret key file {path}: {reason}") from None
    key = decode_secret_key(text)
    if key is None:
        raise ConfigError(f"the secret key file {path} must hold {SECRET_KEY_FORM}")
    return key


def create_private_file(
    path: Path, content: bytes, what: str, *, make_parent: bool = False
) -> bool:
    """Write a new file readable by its owner only; False if one exists already. The link
    makes the creation atomic: of two processes starting at once, one file wins and both read
    it. ConfigError, naming `what`, if it cannot be written."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        if make_parent:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    except OSError as exc:
        raise ConfigError(f"cannot create the {what} {path}: {exc.strerror or exc}") from None
    finally:
        temporary.unlink(missing_ok=True)


def create_key_file(path: Path, *, make_parent: bool = False) -> None:
    """Write a new secret key, readable by its owner only (unless another process just did)."""
    key = base64.b64encode(secrets.token_bytes(SECRET_KEY_BYTES)) + b"\n"
    if create_private_file(path, key, "secret key file", make_parent=make_parent):
        log.warning(
            "created a new secret key; back it up, apart from the database",
            extra={"fields": {"path": str(path)}},
        )
