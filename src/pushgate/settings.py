"""Typed, frozen settings, loaded once from `PUSHGATE_*` variables or a file (STYLE.md §9).

Nothing below the wiring reads the environment: `load_settings` is called by the CLI and the
result is passed down.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pushgate.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///pushgate.db"
DEFAULT_PUBLIC_URL = "http://localhost:8080"


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    # The AES-256-GCM key that seals device secrets at rest: 32 bytes in standard Base64. When
    # empty, the key is read from `secret_key_file`, which is created on first use. Every
    # process on one database needs the same key; without it no device can answer.
    secret_key: str = ""
    secret_key_file: str = "pushgate.key"  # noqa: S105 - a file name, not a key
    public_url: str = DEFAULT_PUBLIC_URL
    # Shown by the authenticator app as the account's issuer. Keep its base64url free of
    # '-' and '_': legacy iOS decodes QR text params with standard Base64 (spec §2).
    issuer: str = "pushgate"
    # Sent back by devices as a Cookie header; the Ping SDKs refuse a QR code without `l`.
    lb_cookie: str = "amlbcookie=01"
    registration_ttl_seconds: int = 300
    default_session_ttl_seconds: int = 86_400  # UnifyID's default (seed 003)
    max_session_ttl_seconds: int = 30 * 86_400
    max_body_bytes: int = 64 * 1024
    device_clock_skew_seconds: int = 60
    expiry_sweep_seconds: float = 1.0
    wait_recheck_seconds: float = 0.5
    max_wait_seconds: int = 60
    db_pool_size: int = 10
    api_key_cache_seconds: float = 10.0  # how long a revoked key may still be honoured
    log_level: str = "INFO"
    log_format: str = "auto"  # auto | json | text

    @property
    def public_base(self) -> str:
        return self.public_url.rstrip("/")


_INT_FIELDS = {f.name for f in dataclasses.fields(Settings) if f.type in ("int", int)}
_FLOAT_FIELDS = {f.name for f in dataclasses.fields(Settings) if f.type in ("float", float)}


def _read_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror}") from exc
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def load_settings(
    environ: Mapping[str, str] | None = None, path: str | Path | None = None
) -> Settings:
    """Settings from a `KEY=VALUE` file (if any), overridden by `PUSHGATE_*` variables."""
    env = dict(os.environ if environ is None else environ)
    source: dict[str, str] = {}
    file_path = path or env.get("PUSHGATE_CONFIG")
    if file_path:
        source.update(_read_file(Path(file_path)))
    source.update({k: v for k, v in env.items() if k.startswith("PUSHGATE_")})

    kwargs: dict[str, object] = {}
    for field in dataclasses.fields(Settings):
        key = "PUSHGATE_" + field.name.upper()
        if key not in source:
            continue
        raw = source[key]
        try:
            if field.name in _INT_FIELDS:
                kwargs[field.name] = int(raw)
            elif field.name in _FLOAT_FIELDS:
                kwargs[field.name] = float(raw)
            else:
                kwargs[field.name] = raw
        except ValueError as exc:
            raise ConfigError(f"{key}={raw!r} is not a number") from exc
    settings = Settings(**kwargs)  # type: ignore[arg-type]
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    url = urlsplit(settings.public_url)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ConfigError(
            f"PUSHGATE_PUBLIC_URL must be an http(s) URL, got {settings.public_url!r}"
        )
    if settings.api_key_cache_seconds < 0:
        raise ConfigError("PUSHGATE_API_KEY_CACHE_SECONDS must not be negative")
    if settings.expiry_sweep_seconds <= 0 or settings.wait_recheck_seconds <= 0:
        raise ConfigError("PUSHGATE_EXPIRY_SWEEP_SECONDS and _WAIT_RECHECK_SECONDS must be > 0")
    if settings.log_format not in ("auto", "json", "text"):
        raise ConfigError("PUSHGATE_LOG_FORMAT must be auto, json or text")
    for name in (
        "registration_ttl_seconds",
        "default_session_ttl_seconds",
        "max_session_ttl_seconds",
        "max_body_bytes",
        "device_clock_skew_seconds",
        "db_pool_size",
        "max_wait_seconds",
    ):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"PUSHGATE_{name.upper()} must be positive")
    if settings.default_session_ttl_seconds > settings.max_session_ttl_seconds:
        raise ConfigError("the default session lifetime exceeds the maximum")
