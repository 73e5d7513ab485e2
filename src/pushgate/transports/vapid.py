"""The server's VAPID key (RFC 8292): the P-256 key that signs every Web Push request and
whose public half browsers subscribe with (`GET /v1/webpush/key`).

A browser binds its subscription to the public key it was given, so the key must outlive
restarts and be the same in every process of a deployment: it lives in a PEM file,
PUSHGATE_VAPID_PRIVATE_KEY_FILE, made on first start when missing (mode 0600). Without that
setting the file goes where the secret key's default goes (secret_key.py): beside a SQLite
database (`pushgate.db` → `pushgate.vapid.pem`), else `$XDG_CONFIG_HOME/pushgate/vapid.pem`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushgate.errors import ConfigError
from pushgate.secret_key import create_private_file, key_location
from pushgate.settings import Settings
from pushgate.transports.webpush_wire import b64url, public_key_bytes

log = logging.getLogger("pushgate")

KEY_FORM = "a P-256 private key in PEM (`openssl ecparam -name prime256v1 -genkey -noout`)"


def key_file(settings: Settings) -> Path | None:
    """The key's file, None for an in-memory database (nothing outlives the process)."""
    return key_location(
        settings,
        settings.vapid_private_key_file,
        "vapid.pem",
        lambda database: database.with_name(database.stem + ".vapid.pem"),
    )


class VapidKey:
    """The key, read (or made) on first use and kept: building the services does no I/O;
    `load()` at start-up turns a bad file into a one-line error before anything is served."""

    def __init__(self, path: Path | None, *, make_parent: bool = False) -> None:
        self.path = path
        self._make_parent = make_parent
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> VapidKey:
        return cls(key_file(settings), make_parent=not settings.vapid_private_key_file)

    def load(self) -> ec.EllipticCurvePrivateKey:
        with self._lock:
            if self._key is None:
                self._key = self._read()
            return self._key

    @property
    def public_key(self) -> str:
        """The public key as browsers take it (`applicationServerKey`): the uncompressed
        point in unpadded base64url."""
        return b64url(public_key_bytes(self.load()))

    def _read(self) -> ec.EllipticCurvePrivateKey:
        if self.path is None:
            return ec.generate_private_key(ec.SECP256R1())
        if not self.path.exists():
            create_key_file(self.path, make_parent=self._make_parent)
        try:
            pem = self.path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the VAPID key file {self.path}: {exc.strerror}"
            ) from None
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ConfigError(f"the VAPID key file {self.path} must hold {KEY_FORM}")
        return key


def create_key_file(path: Path, *, make_parent: bool = False) -> None:
    """Write a new key, readable by its owner only (unless another process just did)."""
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if create_private_file(path, pem, "VAPID key file", make_parent=make_parent):
        log.warning(
            "created a new VAPID key for Web Push; back it up: browsers subscribed with its "
            "public half receive nothing under another key",
            extra={"fields": {"path": str(path)}},
        )
