"""Verifying pushgate's webhooks on the receiving side (Standard Webhooks; the server signs
with the same `pushgate.webhooks.signing`, the only server module the client uses)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pushgate.client.session import Session
from pushgate.webhooks.signing import TOLERANCE_SECONDS, WebhookVerificationError, verify


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified webhook body: `{"type", "timestamp", "data"}`."""

    type: str  # session.accepted, device.registered, user.locked, ...
    timestamp: str
    data: Mapping[str, Any]

    @property
    def session(self) -> Session | None:
        """For `session.*` events, `data` as a Session (what GET returned after the change)."""
        return Session.from_json(self.data) if self.type.startswith("session.") else None


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> WebhookEvent:
    """The event of a webhook request, once its signature and timestamp check out.

    `headers` are the request's (any letter case; an httpx or Starlette `Headers` will do),
    `body` its raw bytes as received, `now` Unix seconds (default: this machine's clock).
    Raises `WebhookVerificationError` for a missing header, a bad signature, a timestamp more
    than `tolerance` seconds away, or a body that is not an event.
    """
    raw = body.encode() if isinstance(body, str) else body
    lowered = {name.lower(): value for name, value in headers.items()}
    moment = int(time.time() if now is None else now)
    verify(secret, lowered, raw, moment, tolerance)
    try:
        event = json.loads(raw)
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            raise ValueError("not an object with a data object")
        return WebhookEvent(str(event["type"]), str(event["timestamp"]), event["data"])
    except (KeyError, ValueError) as exc:
        raise WebhookVerificationError(f"the body is not a webhook event: {exc}") from None
