"""The outbox handler that delivers one webhook (Standard Webhooks 1.0 "Webhook headers",
"Delivery success and failure"; issue 7 "Webhooks").

Each attempt POSTs the row's fixed body under its fixed `webhook-id`, with the attempt's own
`webhook-timestamp` and a signature over the three. A 2xx is done; anything else (another
status, a redirect, a timeout, a refused connection) is retried on the schedule of
`model.retry_delay_ms`, up to `model.MAX_ATTEMPTS`, then dead-lettered. The POST goes through
`poster.Poster`, a keep-alive HTTP/1.1 client made for this (httpx cost more CPU than the rest
of the delivery).
"""

from __future__ import annotations

from collections.abc import Collection

from pushgate.clock import Clock
from pushgate.outbox.model import OutboxRow
from pushgate.outbox.worker import GiveUp, Outcome, Retry
from pushgate.poster import Poster, PostError, split_url
from pushgate.store.ports import Store
from pushgate.transports.tls import client_ssl_context
from pushgate.webhooks import signing
from pushgate.webhooks.events import WebhookDirectory
from pushgate.webhooks.model import (
    ATTEMPT_TIMEOUT_SECONDS,
    Delivery,
    Webhook,
    host_allowed,
    retry_after_ms,
    retry_delay_ms,
)

USER_AGENT = "pushgate-webhooks/1"


class WebhookSender:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        directory: WebhookDirectory,
        *,
        allowed_hosts: Collection[str] = (),
        timeout_seconds: float = ATTEMPT_TIMEOUT_SECONDS,
        ca_file: str = "",
    ) -> None:
        self._store = store
        self._clock = clock
        self._directory = directory
        self._allowed_hosts = tuple(allowed_hosts)
        # One pool for every delivery of the process; no redirects (a 3xx is a failure).
        self._poster = Poster(
            timeout_seconds=timeout_seconds, ssl_context=client_ssl_context(ca_file)
        )

    async def aclose(self) -> None:
        await self._poster.aclose()

    async def _webhook(self, webhook_id: str) -> Webhook | None:
        # The snapshot knows every subscription but those added in the last seconds by
        # another process; for those, and to tell a removed one, the database decides.
        found = self._directory.get(webhook_id)
        if found is not None:
            return found
        async with self._store.autocommit() as db:
            return await db.webhooks.get(webhook_id)

    async def __call__(self, row: OutboxRow) -> Outcome:
        try:
            delivery = Delivery.from_payload(row.payload)
        except ValueError as exc:
            return GiveUp(f"not a webhook delivery: {exc}")
        webhook = await self._webhook(delivery.webhook_id)
        if webhook is None:
            return GiveUp("the webhook was removed")
        try:
            host = split_url(delivery.url)[0].host
        except ValueError as exc:
            return GiveUp(str(exc))
        if not host_allowed(host, self._allowed_hosts):
            return GiveUp(f"the host {host} is no longer in PUSHGATE_WEBHOOK_ALLOWED_HOSTS")
        body = delivery.body.encode()
        sent_at = self._clock.now_ms() // 1000
        headers = [
            ("user-agent", USER_AGENT),
            ("content-type", "application/json"),
            ("webhook-id", delivery.message_id),
            ("webhook-timestamp", str(sent_at)),
            ("webhook-signature", signing.sign(webhook.secret, delivery.message_id, sent_at, body)),
        ]
        backoff = retry_delay_ms(row.attempts)
        try:
            posted = await self._poster.post(delivery.url, headers, body)
        except PostError as exc:
            return Retry(str(exc), after_ms=backoff)
        if 200 <= posted.status < 300:
            return None
        asked = retry_after_ms(posted.retry_after)
        return Retry(f"HTTP {posted.status}", after_ms=max(backoff, asked or 0))
