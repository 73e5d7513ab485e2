"""The server key that seals device secrets at rest (`store/sealing.py`): where every process
of one deployment finds it (docs/CONFIGURATION.md "The secret key"), and the key ring a
rotation writes there (docs/KEYS.md): one key per line, the first the one that seals.

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
import time
from collections.abc import Callable
from pathlib import Path

from pushgate.errors import ConfigError
from pushgate.settings import SECRET_KEY_BYTES, SECRET_KEY_FORM, Settings, decode_key_ring
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
    """The key that seals new secrets (the first of the ring): from settings, else from its
    file, made if absent. The CLI makes sure the database holds no sealed secret before a new
    file is made."""
    return load_key_ring(settings)[0]


def load_key_ring(settings: Settings) -> tuple[bytes, ...]:
    """Every key of the deployment's ring, the sealing one first (docs/KEYS.md)."""
    if settings.secret_key:
        ring = decode_key_ring(settings.secret_key)
        if ring is None:
            raise ConfigError(f"PUSHGATE_SECRET_KEY must be {SECRET_KEY_FORM}")
        return ring
    path = key_file(settings)
    if path is None:  # nothing outlives the process: neither may its key
        return (secrets.token_bytes(SECRET_KEY_BYTES),)
    if not path.exists():
        create_key_file(path, make_parent=not settings.secret_key_file)
    return read_key_ring(path)


def read_key_ring(path: Path) -> tuple[bytes, ...]:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not Base64 text"
        raise ConfigError(f"cannot read the secret key file {path}: {reason}") from None
    ring = decode_key_ring(text)
    if ring is None:
        raise ConfigError(
            f"the secret key file {path} must hold {SECRET_KEY_FORM}, one key per line"
        )
    return ring


class KeyRingFile:
    """The ring of a key file as a sealer's `source` (`store/sealing.py`): the keys read last,
    looked at again when asked to (`reread`) or when `check_seconds` have passed; read again
    only if the file was replaced or changed. A file that cannot be read then keeps the keys
    the process has (logged once), so a bad edit cannot stop a running server."""

    def __init__(self, path: Path, keys: tuple[bytes, ...], check_seconds: float) -> None:
        self._path = path
        self._keys = keys
        self._check = check_seconds
        self._next = time.monotonic() + check_seconds
        self._seen = self._signature()
        self._complained = False

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            found = self._path.stat()
        except OSError:
            return None
        return (found.st_ino, found.st_mtime_ns, found.st_size)

    def __call__(self, reread: bool) -> tuple[bytes, ...]:
        now = time.monotonic()
        if not reread and now < self._next:
            return self._keys
        self._next = now + self._check
        seen = self._signature()
        if seen is None or seen == self._seen:
            return self._keys
        try:
            keys = read_key_ring(self._path)
        except ConfigError as exc:
            if not self._complained:
                log.warning(
                    "cannot re-read the key file; keeping the keys loaded",
                    extra={"fields": {"path": str(self._path), "reason": exc.message}},
                )
                self._complained = True
            return self._keys
        if keys != self._keys:
            log.info("secret key ring re-read", extra={"fields": {"keys": len(keys)}})
        self._seen, self._keys, self._complained = seen, keys, False
        return keys


def key_ring_source(settings: Settings) -> tuple[tuple[bytes, ...], KeyRingFile | None]:
    """The ring now, and what keeps it current: the key file, when the keys come from one."""
    keys = load_key_ring(settings)
    path = key_file(settings)
    if path is None:
        return keys, None
    return keys, KeyRingFile(path, keys, settings.secret_key_check_seconds)


def write_key_ring(path: Path, keys: tuple[bytes, ...]) -> None:
    """Replace the key file at once with `keys`, the first the sealing one (readable by its
    owner only): a process reading it sees the old ring or the new one, never half of it."""
    text = "".join(base64.b64encode(key).decode() + "\n" for key in keys).encode()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the secret key file {path}: {exc.strerror or exc}"
        ) from None
    finally:
        temporary.unlink(missing_ok=True)


def retired_file(path: Path) -> Path:
    return path.with_name(path.name + ".retired")


def keep_retired(path: Path, keys: tuple[bytes, ...]) -> Path:
    """Append retired keys to `<key file>.retired` (owner only): what opens a database backup
    made before the rotation. Returns that file."""
    retired = retired_file(path)
    text = "".join(base64.b64encode(key).decode() + "\n" for key in keys).encode()
    try:
        descriptor = os.open(retired, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "ab") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
    except OSError as exc:
        raise ConfigError(f"cannot write {retired}: {exc.strerror or exc}") from None
    return retired


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
