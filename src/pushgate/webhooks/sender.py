"""The outbox handler that delivers one webhook (Standard Webhooks 1.0 "Webhook headers",
"Delivery success and failure"; issue 7 "Webhooks").

Each attempt POSTs the row's fixed body under its fixed `webhook-id`, with the attempt's own
`webhook-timestamp` and a signature over the three. A 2xx is done; anything else (another
status, a redirect, a timeout, a refused connection) is retried on the schedule of
`model.retry_delay_ms`, up to `model.MAX_ATTEMPTS`, then dead-lettered. The response body is
never read: a receiver cannot make pushgate buffer it.
"""

from __future__ import annotations

from collections.abc import Collection

import httpx

from pushgate.clock import Clock
from pushgate.outbox.model import OutboxRow
from pushgate.outbox.worker import GiveUp, Outcome, Retry
from pushgate.store.ports import Store
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
    ) -> None:
        self._store = store
        self._clock = clock
        self._directory = directory
        self._allowed_hosts = tuple(allowed_hosts)
        self._timeout = timeout_seconds
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        # One client for every delivery of the process (its connection pool); made on first
        # use, inside the event loop that uses it.
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,  # a 3xx is a failure (Standard Webhooks)
                headers={"user-agent": USER_AGENT},
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

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
        host = httpx.URL(delivery.url).host
        if not host_allowed(host, self._allowed_hosts):
            return GiveUp(f"the host {host} is no longer in PUSHGATE_WEBHOOK_ALLOWED_HOSTS")
        body = delivery.body.encode()
        sent_at = self._clock.now_ms() // 1000
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(sent_at),
            "webhook-signature": signing.sign(webhook.secret, delivery.message_id, sent_at, body),
        }
        backoff = retry_delay_ms(row.attempts)
        try:
            async with self._http().stream(
                "POST", delivery.url, content=body, headers=headers
            ) as response:
                status = response.status_code
                asked = retry_after_ms(response.headers.get("retry-after"))
        except httpx.HTTPError as exc:
            return Retry(f"{type(exc).__name__}: {exc}".rstrip(": "), after_ms=backoff)
        if 200 <= status < 300:
            return None
        return Retry(f"HTTP {status}", after_ms=max(backoff, asked or 0))
