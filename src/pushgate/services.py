"""The bundle of services the faces call; built by `wiring`, read by `api` and `cli`."""

from __future__ import annotations

from dataclasses import dataclass

from pushgate.accounts.service import AccountService
from pushgate.clock import Clock
from pushgate.delivery.service import PushDelivery
from pushgate.devices.service import DeviceService
from pushgate.inbox.service import InboxService
from pushgate.outbox.worker import OutboxWorker
from pushgate.sessions.events import SessionEvents
from pushgate.sessions.service import SessionService
from pushgate.settings import Settings
from pushgate.store.ports import Store
from pushgate.transports.vapid import VapidKey
from pushgate.webhooks.service import WebhookService


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
