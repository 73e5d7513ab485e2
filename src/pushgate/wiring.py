"""The composition root: Settings → store → services → app. The only module that names the
concrete adapters."""

from __future__ import annotations

import base64
import logging
import os
import secrets
from pathlib import Path

from starlette.applications import Starlette

from pushgate.accounts.service import AccountService
from pushgate.api.app import create_app
from pushgate.clock import Clock, SystemClock
from pushgate.devices.enrollment import QrSettings
from pushgate.devices.service import DeviceService
from pushgate.errors import ConfigError
from pushgate.logs import configure_logging
from pushgate.services import Services
from pushgate.sessions.events import SessionEvents
from pushgate.sessions.service import SessionService
from pushgate.settings import Settings, load_settings
from pushgate.store import migrate
from pushgate.store.ports import Store
from pushgate.store.postgres import PostgresStore
from pushgate.store.sealing import KEY_BYTES, Sealer
from pushgate.store.sql import SqlStore, create_engine, is_postgres

log = logging.getLogger("pushgate")


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock()
    store = open_store(settings)
    qr = QrSettings(settings.public_base, settings.issuer, settings.lb_cookie)
    events = SessionEvents()
    return Services(
        settings=settings,
        clock=clock,
        store=store,
        accounts=AccountService(store, clock, api_key_cache_seconds=settings.api_key_cache_seconds),
        devices=DeviceService(
            store,
            clock,
            qr,
            registration_ttl=settings.registration_ttl_seconds,
            skew=settings.device_clock_skew_seconds,
        ),
        sessions=SessionService(
            store,
            clock,
            events,
            default_ttl_seconds=settings.default_session_ttl_seconds,
            max_ttl_seconds=settings.max_session_ttl_seconds,
            wait_recheck_seconds=settings.wait_recheck_seconds,
        ),
        events=events,
    )


def open_store(settings: Settings) -> Store:
    sealer = Sealer(load_secret_key(settings))
    if is_postgres(settings.database_url):
        return PostgresStore(settings.database_url, sealer, pool_size=settings.db_pool_size)
    return SqlStore.from_url(settings.database_url, sealer)


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


async def migrate_database(settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


def app_from_environment() -> Starlette:
    """The uvicorn factory used by `pushgate serve` (one per worker process)."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(build_services(settings))
