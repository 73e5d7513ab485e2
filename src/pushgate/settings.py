"""Typed, frozen settings, loaded once from `PUSHGATE_*` variables or a file (STYLE.md §9;
docs/CONFIGURATION.md documents every field).

Nothing below the wiring reads the environment: `load_settings` is the one reader, called by
the CLI, and the result is passed down, to uvicorn's worker processes too (pickled, never
through `os.environ`). Every bad value becomes one `ConfigError` line that names the variable,
what it accepts and what it was given.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pushgate.errors import ConfigError

PREFIX = "PUSHGATE_"
CONFIG_VARIABLE = "PUSHGATE_CONFIG"
DEFAULT_DATABASE_URL = "sqlite:///pushgate.db"
DEFAULT_PUBLIC_URL = "http://localhost:8080"
SECRET_KEY_BYTES = 32  # AES-256; store/sealing.py refuses any other length
SECRET_KEY_FORM = "32 bytes in standard Base64 (make one with `openssl rand -base64 32`)"  # noqa: S105 - a description, not a key
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The URL schemes store/engine.py accepts (a test keeps the two lists equal).
SQLITE_SCHEMES = ("sqlite", "sqlite+aiosqlite")
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")

Positive = Annotated[int, Field(gt=0)]
PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
MAX_OUTBOX_LEASE_SECONDS = 30.0  # issue 8: a crashed send resumes within 30 s


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="forbid")

    database_url: str = DEFAULT_DATABASE_URL
    # The AES-256-GCM key that seals device secrets at rest: 32 bytes in standard Base64. When
    # empty, the key is read from `secret_key_file` (`secret_key.py` finds it), which is
    # created on first use. Every process on one database needs the same key.
    secret_key: str = Field(default="", repr=False)
    # Empty: beside the SQLite database, or a per-user default for PostgreSQL (secret_key.py).
    secret_key_file: str = ""
    # How often a running process looks whether its key file changed (a rotation added a key,
    # docs/KEYS.md); a value naming a key it lacks makes it look at once.
    secret_key_check_seconds: PositiveSeconds = 2.0
    public_url: str = DEFAULT_PUBLIC_URL
    # The reverse proxies and load balancers whose X-Forwarded-For / Forwarded / X-Real-IP
    # headers are believed (forwarded.py): comma-separated addresses or CIDR networks.
    # Empty: none; the client is the TCP peer and those headers are ignored (anyone can send them).
    trusted_proxies: str = ""
    # Shown by the authenticator app as the account's issuer. Keep its base64url free of
    # '-' and '_': legacy iOS decodes QR text params with standard Base64 (spec §2).
    issuer: str = "pushgate"
    # Sent back by devices as a Cookie header; the Ping SDKs refuse a QR code without `l`.
    lb_cookie: str = "amlbcookie=01"
    registration_ttl_seconds: Positive = 300
    # Journeys' REST API (docs/JOURNEYS.md "The REST API"): how long a login session
    # (iPlanetDirectoryPro) lasts; origins allowed to call /json/ with credentials (CORS),
    # comma-separated, exact (`https://app.example.com`); empty: no cross-origin calls.
    login_session_seconds: Positive = 7200
    cors_origins: str = ""
    # How long a Push Wait step is held for its push to end: under the SDKs' request timeout
    # (the JS SDK's is 5 s).
    journey_hold_seconds: Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)] = 3.0
    default_session_ttl_seconds: Positive = 86_400  # UnifyID's default (seed 003)
    max_session_ttl_seconds: Positive = 30 * 86_400
    max_body_bytes: Positive = 64 * 1024
    device_clock_skew_seconds: Positive = 60
    expiry_sweep_seconds: PositiveSeconds = 1.0
    wait_recheck_seconds: PositiveSeconds = 0.5
    max_wait_seconds: Positive = 60
    # Event streams (api/rp_events.py): a comment line this often keeps idle connections
    # open; a re-read this often catches what no wake-up announced.
    event_stream_heartbeat_seconds: PositiveSeconds = 15.0
    event_stream_recheck_seconds: PositiveSeconds = 30.0
    db_pool_size: Positive = 10
    # How long a revoked key may still be honoured; 0 turns the cache off.
    api_key_cache_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 10.0
    # The outbox worker (pushgate.outbox): a claimed row is another process's after its
    # lease; a failing row is retried with backoff, then dead-lettered.
    outbox_lease_seconds: PositiveSeconds = 30.0
    outbox_batch: Positive = 50
    outbox_max_attempts: Positive = 10
    outbox_poll_seconds: PositiveSeconds = 1.0
    # The retention purge (docs/AUDIT.md "Retention"): a round this often, deleting at most
    # this many rows of each kind per statement.
    purge_interval_seconds: PositiveSeconds = 3600.0
    purge_batch: Positive = 1000
    # Webhooks (docs/WEBHOOKS.md): hosts a webhook URL may name, comma-separated, exact or
    # `*.domain` (empty: any host, loopback and private addresses too); one attempt's timeout.
    webhook_allowed_hosts: str = ""
    webhook_timeout_seconds: PositiveSeconds = 10.0
    # Extra trust anchors (a PEM file) for every outgoing HTTPS connection: push providers,
    # their OAuth token endpoints, private gateways, loopback test servers.
    tls_ca_file: str = ""
    # APNs provider API (transports/apns.py): token auth with a .p8 key; every realm.
    apns_key_file: str = ""
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""
    apns_url: str = "https://api.push.apple.com"
    # FCM HTTP v1 (transports/fcm.py): a service-account JSON key; every realm.
    fcm_credentials_file: str = ""
    fcm_url: str = "https://fcm.googleapis.com"
    # Web Push (transports/webpush.py, transports/vapid.py): the VAPID key file, made on first
    # start when missing (empty: beside the database, as the secret key), and the contact
    # push services may write to (`mailto:` or `https:`); every realm.
    vapid_private_key_file: str = ""
    vapid_subject: str = ""
    # AWS SNS (transports/sns.py) with AM's envelope: empty keys use boto3's credential chain;
    # the platform application ARNs are those devices' endpoints are created under.
    sns_region: str = "us-east-1"
    sns_access_key_id: str = ""
    sns_secret_access_key: str = Field(default="", repr=False)
    sns_endpoint_url: str = ""
    sns_apple_arn: str = ""
    sns_google_arn: str = ""
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"
    # When set, `/metrics` answers only `Authorization: Bearer <this token>` (docs/OPERATIONS.md).
    metrics_token: str = Field(default="", repr=False)
    # Not a setting: $XDG_CONFIG_HOME as `load_settings` found it, for the PostgreSQL default
    # key file (secret_key.py), so that worker processes need not read the environment.
    _xdg_config_home: str | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only `load_settings` reads the environment, from the mapping it is given, so that
        # `Settings(...)` in a test or a worker process means exactly its arguments.
        return (init_settings,)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        scheme = value.partition("://")[0].lower() if "://" in value else ""
        if scheme not in SQLITE_SCHEMES + POSTGRES_SCHEMES:
            raise ValueError("sqlite:///PATH or postgresql://USER@HOST/DB")
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: str) -> str:
        if value and decode_key_ring(value) is None:
            raise ValueError(SECRET_KEY_FORM)
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError("an http:// or https:// URL with a host")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        from pushgate.forwarded import trusted_networks

        trusted_networks(value)  # ValueError names the bad entry
        return value

    @field_validator("tls_ca_file", "apns_key_file", "fcm_credentials_file")
    @classmethod
    def _readable_file(cls, value: str) -> str:
        if value and not os.access(value, os.R_OK):
            raise ValueError("empty or a readable file")
        return value

    @field_validator("apns_url", "fcm_url")
    @classmethod
    def _provider_url(cls, value: str) -> str:
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError("an https:// URL with a host (http:// only for a private gateway)")
        return value

    @field_validator("vapid_subject")
    @classmethod
    def _vapid_subject(cls, value: str) -> str:
        # RFC 8292 §2.1: a contact push services can reach, `mailto:` or an `https:` URL.
        url = urlsplit(value)
        mailto = url.scheme == "mailto" and "@" in url.path
        if value and not mailto and not (url.scheme == "https" and url.hostname):
            raise ValueError("empty, a mailto: address or an https:// URL")
        return value

    @field_validator("sns_region")
    @classmethod
    def _sns_region(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}", value):
            raise ValueError("an AWS region name such as us-east-1")
        return value

    @field_validator("sns_endpoint_url")
    @classmethod
    def _sns_endpoint_url(cls, value: str) -> str:
        url = urlsplit(value)
        if value and (url.scheme not in ("http", "https") or not url.hostname):
            raise ValueError("empty or an https:// URL with a host (http:// for a test server)")
        return value

    @field_validator("sns_apple_arn", "sns_google_arn")
    @classmethod
    def _sns_arn(cls, value: str) -> str:
        if value and (not value.startswith("arn:") or ":app/" not in value):
            raise ValueError("empty or an SNS platform application ARN (arn:aws:sns:...:app/...)")
        return value

    @field_validator("outbox_lease_seconds")
    @classmethod
    def _outbox_lease(cls, value: float) -> float:
        # A send in flight when its process dies is made again within 30 s of a restart.
        if value > MAX_OUTBOX_LEASE_SECONDS:
            raise ValueError("a number above 0 and at most 30 (pushes must resume within 30 s)")
        return value

    @field_validator("webhook_allowed_hosts")
    @classmethod
    def _webhook_allowed_hosts(cls, value: str) -> str:
        from pushgate.webhooks.model import parse_allowed_hosts

        parse_allowed_hosts(value)  # ValueError names the bad entry
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        if not isinstance(value, str) or value.strip().upper() not in LOG_LEVELS:
            raise ValueError("one of " + ", ".join(LOG_LEVELS))
        return value.strip().upper()

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _lifetimes(self) -> Settings:
        if self.default_session_ttl_seconds > self.max_session_ttl_seconds:
            raise ValueError(
                f"PUSHGATE_DEFAULT_SESSION_TTL_SECONDS ({self.default_session_ttl_seconds}) "
                f"must not exceed PUSHGATE_MAX_SESSION_TTL_SECONDS "
                f"({self.max_session_ttl_seconds})"
            )
        return self

    @model_validator(mode="after")
    def _apns_together(self) -> Settings:
        # A half-configured APNs key would only fail at the first push, as a 403.
        apns = {
            "PUSHGATE_APNS_KEY_FILE": self.apns_key_file,
            "PUSHGATE_APNS_KEY_ID": self.apns_key_id,
            "PUSHGATE_APNS_TEAM_ID": self.apns_team_id,
            "PUSHGATE_APNS_TOPIC": self.apns_topic,
        }
        missing = [name for name, value in apns.items() if not value]
        if 0 < len(missing) < len(apns):
            raise ValueError(
                f"{', '.join(missing)} must be set too: APNs needs "
                "PUSHGATE_APNS_KEY_FILE, _KEY_ID, _TEAM_ID and _TOPIC together"
            )
        return self

    @model_validator(mode="after")
    def _sns_keys_together(self) -> Settings:
        # One half of an access key would only fail at the first push, as a signature error.
        if bool(self.sns_access_key_id) != bool(self.sns_secret_access_key):
            raise ValueError(
                "PUSHGATE_SNS_ACCESS_KEY_ID and PUSHGATE_SNS_SECRET_ACCESS_KEY go together "
                "(or neither: boto3's credential chain)"
            )
        return self

    @property
    def public_base(self) -> str:
        return self.public_url.rstrip("/")

    @property
    def config_home(self) -> Path:
        """The user's configuration directory: $XDG_CONFIG_HOME, else ~/.config."""
        return Path(self._xdg_config_home or Path.home() / ".config").absolute()


def decode_secret_key(text: str) -> bytes | None:
    """The key bytes of `text` (standard Base64), None if it is not such a key."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == SECRET_KEY_BYTES else None


def decode_key_ring(text: str) -> tuple[bytes, ...] | None:
    """The keys of a key ring (docs/KEYS.md): keys separated by commas or on lines of their
    own, the first the one that seals; `#` starts a comment line. None if any is no key."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    keys = [decode_secret_key(part) for line in lines for part in line.split(",") if part.strip()]
    if not keys or any(key is None for key in keys):
        return None
    return tuple(key for key in keys if key is not None)


def redact_url(url: str) -> str:
    """A database URL fit for a message: the password, if any, is replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{netloc[2]}").geturl()


def variable(field: str) -> str:
    return PREFIX + field.upper()


KNOWN_VARIABLES = {variable(name): name for name in Settings.model_fields}


def load_settings(
    environ: Mapping[str, str] | None = None, path: str | Path | None = None
) -> Settings:
    """Settings from a `KEY=VALUE` file (`path`, else `PUSHGATE_CONFIG`), overridden by
    `PUSHGATE_*` variables of `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    where: dict[str, str] = {}
    file_path = path or env.get(CONFIG_VARIABLE)
    if file_path:
        for key, (value, line) in read_settings_file(Path(file_path)).items():
            values[KNOWN_VARIABLES[key]] = value
            where[KNOWN_VARIABLES[key]] = f"{file_path}:{line}"
    for key, name in KNOWN_VARIABLES.items():
        if key in env:
            values[name] = env[key]
            where.pop(name, None)
    try:
        settings = Settings(**values)  # type: ignore[arg-type]  # pydantic parses the strings
    except ValidationError as exc:
        raise ConfigError(_describe(exc, values, where)) from None
    settings._xdg_config_home = env.get("XDG_CONFIG_HOME") or None
    return settings


def read_settings_file(path: Path) -> dict[str, tuple[str, int]]:
    """`PUSHGATE_*` variable → (value, line number) of a settings file; a line that is not
    `KEY=VALUE`, a name that is not a setting, or a name given twice is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read the settings file {path}: {reason}") from None
    found: dict[str, tuple[str, int]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        if key not in KNOWN_VARIABLES:
            raise ConfigError(f"{path}:{number}: {key} is not a setting{_suggest(key)}")
        if key in found:
            raise ConfigError(f"{path}:{number}: {key} is already set on line {found[key][1]}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[key] = (value, number)
    return found


def misspelt_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """One warning per `PUSHGATE_*` variable of the environment that is no setting but looks
    like one (other tools' PUSHGATE_ variables, unlike a file's unknown names, are allowed)."""
    env = os.environ if environ is None else environ
    warnings = []
    for key in sorted(env):
        if key.startswith(PREFIX) and key not in KNOWN_VARIABLES and key != CONFIG_VARIABLE:
            close = difflib.get_close_matches(key, KNOWN_VARIABLES, n=1, cutoff=0.85)
            if close:
                warnings.append(f"{key} is not a setting; did you mean {close[0]}?")
    return warnings


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key.upper(), KNOWN_VARIABLES, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else " (docs/CONFIGURATION.md lists them)"


def _describe(exc: ValidationError, values: Mapping[str, str], where: Mapping[str, str]) -> str:
    """One line for the first problem: the variable, what it accepts, what it got."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    others = len(errors) - 1
    more = f" (and {others} more invalid setting{'s' * (others > 1)})" if others else ""
    message = str(first.get("ctx", {}).get("error", first["msg"]))
    if not first["loc"]:  # a rule across fields: its message names them
        return message + more
    name = str(first["loc"][0])
    label = variable(name) + (f" ({where[name]})" if name in where else "")
    given = repr(values.get(name, first.get("input")))
    if name == "secret_key":
        given = "something else (not shown)"
    elif name == "database_url":
        given = repr(redact_url(str(values.get(name, ""))))
    return f"{label} must be {_allowed(name, first, message)}; got {given}{more}"


def _allowed(name: str, error: Any, message: str) -> str:
    if error["type"] == "value_error":
        return message
    if error["type"] == "literal_error":
        return "one of " + str(error["ctx"]["expected"]).replace("'", "")
    field = Settings.model_fields[name]
    kind = "a whole number" if field.annotation is int else "a number"
    for bound in field.metadata:  # pydantic keeps Field(gt=…) as annotated-types bounds
        if getattr(bound, "gt", None) is not None:
            return f"{kind} above {bound.gt}"
        if getattr(bound, "ge", None) is not None:
            return f"{kind}, {bound.ge} or more"
    return kind if field.annotation in (int, float) else message
