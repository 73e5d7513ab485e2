"""The bundle of services the faces call; built by `wiring`, read by `api` and `cli`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pushgate.accounts.service import AccountService
from pushgate.admin.service import AdminService
from pushgate.clock import Clock
from pushgate.delivery.service import PushDelivery
from pushgate.devices.service import DeviceService
from pushgate.inbox.service import InboxService
from pushgate.journeys.auth_id import AuthIds
from pushgate.journeys.service import JourneyService
from pushgate.logins.service import LoginService
from pushgate.outbox.worker import OutboxWorker
from pushgate.sessions.events import SessionEvents
from pushgate.sessions.service import SessionService
from pushgate.settings import Settings
from pushgate.store.ports import Store
from pushgate.transports.vapid import VapidKey
from pushgate.webhooks.service import WebhookService

if TYPE_CHECKING:  # prometheus-client is imported by the wiring, after `serve` set it up
    from pushgate.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    clock: Clock
    store: Store
    accounts: AccountService
    devices: DeviceService
    sessions: SessionService
    events: SessionEvents
    outbox_worker: OutboxWorker
    vapid: VapidKey  # Web Push's key, read on first use (transports/vapid.py)
    webhooks: WebhookService
    pushes: PushDelivery  # push delivery through the outbox (delivery/)
    inbox: InboxService  # the message inbox (inbox/)
    metrics: Metrics  # this process's Prometheus instruments (metrics/)
    journeys: JourneyService  # journeys and their steps (journeys/)
    logins: LoginService  # iPlanetDirectoryPro login sessions (logins/)
    auth_ids: AuthIds  # seals journey states into authIds (journeys/auth_id.py)
    admin: AdminService  # the operators' use cases and admin keys (admin/)
