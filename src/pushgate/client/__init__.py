"""pushgate.client: a small typed client for pushgate's relying-party API (docs/CLIENT.md).

with PushgateClient("https://push.example.com", api_key) as pushgate:
    session = pushgate.create("alice", push_type="challenge")
    show(session.challenge_number)
    final = pushgate.wait(session.id, timeout=120)
"""

from pushgate.client.api import AsyncPushgateClient, PushgateClient
from pushgate.client.session import ApiError, Session, StreamInterrupted
from pushgate.client.webhooks import WebhookEvent, verify_webhook
from pushgate.webhooks.signing import WebhookVerificationError

__all__ = [
    "ApiError",
    "AsyncPushgateClient",
    "PushgateClient",
    "Session",
    "StreamInterrupted",
    "WebhookEvent",
    "WebhookVerificationError",
    "verify_webhook",
]
