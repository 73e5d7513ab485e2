"""The composition root: Settings → store → services → app. The only module that names the
concrete adapters; a feature registers itself here with one line (its outbox handler, its
session follower, its routes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.applications import Starlette

from pushgate.accounts.service import AccountService
from pushgate.admin.service import AdminService
from pushgate.api.app import create_app
from pushgate.background import Background
from pushgate.clock import Clock, SystemClock
from pushgate.delivery.service import PushDelivery
from pushgate.devices.enrollment import QrSettings
from pushgate.devices.service import DeviceService
from pushgate.errors import PushgateError, Unavailable
from pushgate.inbox.service import InboxService
from pushgate.journeys.auth_id import AuthIds
from pushgate.journeys.service import JourneyService
from pushgate.logins.service import LoginService
from pushgate.metrics import Metrics
from pushgate.outbox.handoff import Handoff
from pushgate.outbox.model import RetryPolicy
from pushgate.outbox.worker import Doorbell, Handler, OutboxWorker, WorkerSettings
from pushgate.secret_key import key_ring_source, load_secret_key
from pushgate.services import Services
from pushgate.sessions.events import SessionEvents
from pushgate.sessions.machine import Follower
from pushgate.sessions.service import SessionService
from pushgate.settings import Settings
from pushgate.store import migrate
from pushgate.store.engine import create_engine, is_postgres
from pushgate.store.ports import Store
from pushgate.store.postgres import PostgresStore
from pushgate.store.sealing import Sealer
from pushgate.store.sqlite import SqliteStore
from pushgate.transports.apns import ApnsConfig, ApnsTransport
from pushgate.transports.base import Transport
from pushgate.transports.fcm import FcmConfig, FcmTransport
from pushgate.transports.sns import SnsConfig, SnsTransport
from pushgate.transports.vapid import VapidKey
from pushgate.transports.webpush import WebPushConfig, WebPushTransport
from pushgate.webhooks.model import parse_allowed_hosts
from pushgate.webhooks.service import WebhookService

# What follows a session's changes (one line per feature): followers write outbox rows in
# the change's own commit; handlers, by outbox kind, carry them out.
FOLLOWERS: Sequence[Follower] = ()
HANDLERS: Mapping[str, Handler] = {}


def build_services(
    settings: Settings,
    clock: Clock | None = None,
    *,
    followers: Sequence[Follower] = FOLLOWERS,
    handlers: Mapping[str, Handler] = HANDLERS,
) -> Services:
    clock = clock or SystemClock()
    store = open_store(settings)
    metrics = Metrics()
    qr = QrSettings(settings.public_base, settings.issuer, settings.lb_cookie)
    events = SessionEvents(clock.now_ms)
    doorbell = Doorbell()
    webhooks = WebhookService(
        store,
        clock,
        allowed_hosts=parse_allowed_hosts(settings.webhook_allowed_hosts),
        timeout_seconds=settings.webhook_timeout_seconds,
        ca_file=settings.tls_ca_file,
        on_outbox=doorbell.ring,
    )
    followers = (*followers, webhooks.follower)
    vapid = VapidKey.from_settings(settings)

    async def undelivered(realm: str, session_id: str) -> None:
        await sessions.undelivered(realm, session_id)  # bound below: pushes come first

    pushes = PushDelivery(
        store,
        clock,
        push_transports(settings, clock, vapid),
        lb_cookie=settings.lb_cookie,
        on_outbox=doorbell.ring,
        on_result=metrics.delivery,
        on_undelivered=undelivered,
    )
    followers = (*followers, pushes.follower)
    accounts = AccountService(store, clock, api_key_cache_seconds=settings.api_key_cache_seconds)
    handlers = {**handlers, **webhooks.handlers}
    handlers = {**handlers, **pushes.handlers}
    worker_settings = WorkerSettings(
        lease_ms=int(settings.outbox_lease_seconds * 1000),
        batch=settings.outbox_batch,
        idle_seconds=settings.outbox_poll_seconds,
    )
    handoff = Handoff(
        pushes.handoff_kinds, lease_ms=worker_settings.lease_ms, capacity=worker_settings.batch
    )
    sessions = SessionService(
        store,
        clock,
        events,
        default_ttl_seconds=settings.default_session_ttl_seconds,
        max_ttl_seconds=settings.max_session_ttl_seconds,
        wait_recheck_seconds=settings.wait_recheck_seconds,
        followers=followers,
        on_outbox=doorbell.ring,
        handoff=handoff,
        policies=accounts.realm_policy,
        observe=metrics.session_changed,
    )
    devices = DeviceService(
        store,
        clock,
        qr,
        registration_ttl=settings.registration_ttl_seconds,
        skew=settings.device_clock_skew_seconds,
        followers=followers,
        on_outbox=doorbell.ring,
        push_endpoint=pushes.push_endpoint,
    )
    return Services(
        settings=settings,
        clock=clock,
        store=store,
        accounts=accounts,
        devices=devices,
        sessions=sessions,
        events=events,
        metrics=metrics,
        outbox_worker=OutboxWorker(
            store,
            clock,
            handlers,
            policy=RetryPolicy(max_attempts=settings.outbox_max_attempts),
            policies={**webhooks.policies, **pushes.policies},
            settings=worker_settings,
            doorbell=doorbell,
            handoff=handoff,
        ),
        vapid=vapid,
        webhooks=webhooks,
        pushes=pushes,
        inbox=InboxService(
            store,
            clock,
            settings.device_clock_skew_seconds,
            announce=pushes.inbox_rows,
            on_outbox=doorbell.ring,
        ),
        journeys=JourneyService(store, clock, sessions, devices, qr),
        logins=LoginService(store, clock, lifetime_seconds=settings.login_session_seconds),
        # The key open_store sealed with (a database in memory gets a fresh one per call,
        # which nothing outlives either).
        auth_ids=AuthIds(load_secret_key(settings)),
        admin=AdminService(
            store,
            clock,
            key_cache_seconds=settings.api_key_cache_seconds,
            followers=followers,
            on_outbox=doorbell.ring,
        ),
    )


def push_transports(settings: Settings, clock: Clock, vapid: VapidKey) -> dict[str, Transport]:
    """The push providers with credentials (docs/PUSH.md); the devices of one without are
    served by polling. A credential file that cannot be used stops start-up (ConfigError)."""
    transports: dict[str, Transport] = {}
    if (apns := ApnsConfig.from_settings(settings)) is not None:
        transports["apns"] = ApnsTransport(apns, clock)
    if (fcm := FcmConfig.from_settings(settings)) is not None:
        transports["gcm"] = FcmTransport(fcm, clock)
    if (web := WebPushConfig.from_settings(settings, vapid)) is not None:
        transports["webpush"] = WebPushTransport(web, clock)
    if (sns := SnsConfig.from_settings(settings)) is not None:
        transports["sns"] = SnsTransport(sns, clock)
    return transports


def open_store(settings: Settings) -> Store:
    keys, source = key_ring_source(settings)  # the key file is watched: docs/KEYS.md
    sealer = Sealer(*keys, source=source)
    if is_postgres(settings.database_url):
        return PostgresStore(settings.database_url, sealer, pool_size=settings.db_pool_size)
    return SqliteStore(settings.database_url, sealer)


async def migrate_database(settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    try:
        await migrate.upgrade(engine)
    except PushgateError:
        raise
    except Exception as exc:  # any driver's way of saying the database cannot be used
        raise Unavailable(
            f"cannot open the database: {_first_line(exc)}", reason=repr(exc)
        ) from exc
    finally:
        await engine.dispose()


def _first_line(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    text = str(getattr(cause, "orig", None) or cause).strip().splitlines()
    return text[0] if text else type(cause).__name__


def build_app(settings: Settings) -> Starlette:
    """The ASGI app of one server process (`pushgate serve` calls it in every worker)."""
    services = build_services(settings)
    services.vapid.load()  # the Web Push key: made on first start, a bad file fails it
    return create_app(
        services, background=Background(services), schema_head=migrate.head_revision()
    )
