"""Row ↔ model mapping of webhook subscriptions, shared by both store adapters. The secret is
sealed like a device secret (`sealing.py`): a copy of the database is not a copy of every
relying party's signing key. Pure."""

from __future__ import annotations

import json
from typing import Any

from pushgate.store.rows import Row
from pushgate.store.sealing import Sealer
from pushgate.webhooks.model import EventType, Webhook


def _context(webhook_id: str) -> str:
    return f"webhooks/{webhook_id}"


def webhook(row: Row, sealer: Sealer) -> Webhook:
    webhook_id = row["id"]
    events = json.loads(row["events"]) if row["events"] is not None else None
    return Webhook(
        id=webhook_id,
        realm=row["realm"],
        url=row["url"],
        events=frozenset(EventType(e) for e in events) if events is not None else None,
        secret=sealer.open(bytes(row["secret"]), _context(webhook_id)).decode("ascii"),
        created_ms=row["created_ms"],
    )


def webhook_values(w: Webhook, sealer: Sealer) -> dict[str, Any]:
    return {
        "id": w.id,
        "realm": w.realm,
        "url": w.url,
        "events": json.dumps(sorted(w.events)) if w.events is not None else None,
        "secret": sealer.seal(w.secret.encode("ascii"), _context(w.id)),
        "created_ms": w.created_ms,
    }
