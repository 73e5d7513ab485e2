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
