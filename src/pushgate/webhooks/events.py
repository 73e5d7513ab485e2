"""From committed changes to webhook deliveries (issue 7 "Webhooks"). Pure.

`WebhookFollower` is the follower (`pushgate.changes`) of webhooks: for a change that is an
event, one outbox row per subscription of the realm that wants it, in the change's own commit.
It reads the subscriptions from this process's `WebhookDirectory`, a snapshot a background
task replaces every few seconds (`service.py`), so a follower never touches the database.

Until the snapshot is first loaded in a process that will load it (a server that just
started), the follower writes one *fan-out* row per event instead; its handler expands it
into the same delivery rows from the database. No event is lost in that window, and outside
it there is no extra hop.

Body and `webhook-id` are functions of the event and the subscription only, so a follower
that runs twice for one change (a retried commit) writes rows with the same keys, which the
outbox keeps once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pushgate.changes import Change, DeviceChange, SessionChange, UserChange, UserEvent
from pushgate.outbox.model import OutboxMessage
from pushgate.sessions.model import SessionStatus
from pushgate.sessions.wire import session_json, timestamp
from pushgate.webhooks.model import KIND, Delivery, EventType, Webhook

_DEVICE_EVENTS = frozenset({EventType.DEVICE_REGISTERED.value, EventType.DEVICE_REMOVED.value})

FANOUT_KIND = "webhook.fanout"
# PowerAuth's denial reason for "this wasn't me" (issue 7 "Operations").
FRAUD_REASON = "UNEXPECTED_OPERATION"

_SESSION_EVENTS = {
    SessionStatus.APPROVED: EventType.SESSION_ACCEPTED,
    SessionStatus.DENIED: EventType.SESSION_REJECTED,
    SessionStatus.EXPIRED: EventType.SESSION_EXPIRED,
    SessionStatus.CANCELED: EventType.SESSION_CANCELED,
    SessionStatus.FAILED: EventType.SESSION_ERROR,
}


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One event of a realm. `identity` names it uniquely: the same event reached twice (a
    fraud report seen as a denial and as a user change) has one identity, hence one row."""

    type: EventType
    realm: str
    identity: str
    at_ms: int
    data: Mapping[str, object]

    def body(self) -> str:
        """The exact bytes every subscription receives (Standard Webhooks payload)."""
        envelope = {"type": self.type.value, "timestamp": timestamp(self.at_ms), "data": self.data}
        return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)

    def payload(self) -> dict[str, object]:
        return {
            "type": self.type.value,
            "realm": self.realm,
            "identity": self.identity,
            "at": self.at_ms,
            "data": dict(self.data),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> WebhookEvent:
        data, at = payload.get("data"), payload.get("at")
        if not isinstance(data, dict) or not isinstance(at, int):
            raise ValueError("not a webhook fan-out row")
        return cls(
            EventType(str(payload["type"])),
            str(payload["realm"]),
            str(payload["identity"]),
            at,
            data,
        )


def events_of(change: Change) -> list[WebhookEvent]:
    """The webhook events a committed change is; an ordinary create is none."""
    if isinstance(change, SessionChange):
        session = change.session
        if change.event is None and session.status is SessionStatus.PENDING:
            return []
        event_type = _SESSION_EVENTS.get(session.status)
        if event_type is None:
            return []
        events = [
            WebhookEvent(
                event_type,
                session.realm,
                f"{event_type}:{session.id}",
                session.updated_ms,
                session_json(session, session.updated_ms),
            )
        ]
        if session.status is SessionStatus.DENIED and session.deny_reason == FRAUD_REASON:
            events.append(
                _user_event(
                    EventType.USER_FRAUD_REPORTED,
                    session.realm,
                    session.username,
                    session.updated_ms,
                    session.id,
                )
            )
        return events
    if isinstance(change, DeviceChange):
        if change.type not in _DEVICE_EVENTS:
            return []  # a block or an unblock: the app is told (delivery/), no webhook type
        device = change.device
        event_type = EventType(change.type)
        data = {
            "id": device.mechanism_uid,
            "user": change.username,
            "realm": device.realm,
            "name": device.name,
            "deviceType": device.device_type,
        }
        return [
            WebhookEvent(event_type, device.realm, f"{event_type}:{device.id}", change.at_ms, data)
        ]
    if isinstance(change, UserChange):
        event_type = (
            EventType.USER_LOCKED
            if change.type is UserEvent.LOCKED
            else EventType.USER_FRAUD_REPORTED
        )
        return [
            _user_event(event_type, change.realm, change.username, change.at_ms, change.session_id)
        ]
    return []


def _realm(change: Change) -> str:
    if isinstance(change, SessionChange):
        return change.session.realm
    if isinstance(change, DeviceChange):
        return change.device.realm
    return change.realm


def _user_event(
    event_type: EventType, realm: str, username: str, at_ms: int, session_id: str | None
) -> WebhookEvent:
    # A report is one per session; a lock is one per moment (a user may be locked again later).
    cause = session_id if session_id is not None else f"{realm}\n{username}\n{at_ms}"
    data = {"user": username, "realm": realm, "sessionId": session_id}
    return WebhookEvent(event_type, realm, f"{event_type}:{cause}", at_ms, data)


def message_id(webhook_id: str, event: WebhookEvent) -> str:
    """The `webhook-id` of one event for one subscription: derived, not random, so the same
    event always gets the same id (and no `.`: the id is part of the signed text)."""
    digest = hashlib.sha256(f"{webhook_id}\n{event.identity}".encode()).hexdigest()
    return "msg_" + digest[:32]


def deliveries(event: WebhookEvent, webhooks: Iterable[Webhook]) -> list[OutboxMessage]:
    """One delivery row per subscription of the event's realm that wants its type."""
    body = event.body()
    messages = []
    for webhook in webhooks:
        if webhook.realm != event.realm or not webhook.wants(event.type):
            continue
        delivery = Delivery(
            message_id(webhook.id, event), webhook.id, webhook.url, event.type, body
        )
        messages.append(OutboxMessage(KIND, event.realm, delivery.message_id, delivery.payload()))
    return messages


def fanout(event: WebhookEvent) -> OutboxMessage:
    key = "evt_" + hashlib.sha256(event.identity.encode()).hexdigest()[:32]
    return OutboxMessage(FANOUT_KIND, event.realm, key, event.payload())


class DirectoryState(StrEnum):
    UNUSED = "unused"  # no background task will load it (a CLI command): nothing to follow
    STARTING = "starting"  # a task will load it: until then events wait in fan-out rows
    LOADED = "loaded"


class WebhookDirectory:
    """This process's snapshot of every subscription, replaced whole (never edited) by the
    refresh task: a reader sees one consistent snapshot."""

    def __init__(self) -> None:
        self._by_realm: dict[str, tuple[Webhook, ...]] = {}
        self._by_id: dict[str, Webhook] = {}
        self.state = DirectoryState.UNUSED

    def expect_loading(self) -> None:
        if self.state is DirectoryState.UNUSED:
            self.state = DirectoryState.STARTING

    def replace(self, webhooks: Sequence[Webhook]) -> None:
        by_realm: dict[str, list[Webhook]] = {}
        for webhook in webhooks:
            by_realm.setdefault(webhook.realm, []).append(webhook)
        self._by_realm = {realm: tuple(found) for realm, found in by_realm.items()}
        self._by_id = {webhook.id: webhook for webhook in webhooks}
        self.state = DirectoryState.LOADED

    def for_realm(self, realm: str) -> tuple[Webhook, ...]:
        return self._by_realm.get(realm, ())

    def get(self, webhook_id: str) -> Webhook | None:
        return self._by_id.get(webhook_id)

    def __len__(self) -> int:
        return len(self._by_id)


class WebhookFollower:
    """The follower of webhooks: pure, it reads only the directory it was given."""

    def __init__(self, directory: WebhookDirectory) -> None:
        self._directory = directory

    def __call__(self, change: Change) -> list[OutboxMessage]:
        directory = self._directory
        if directory.state is DirectoryState.UNUSED:
            return []
        if directory.state is DirectoryState.LOADED and not directory.for_realm(_realm(change)):
            return []  # the common case costs one lookup, no JSON
        events = events_of(change)
        if not events:
            return []
        if directory.state is DirectoryState.STARTING:
            return [fanout(event) for event in events]
        return [m for e in events for m in deliveries(e, directory.for_realm(e.realm))]
