"""Pushes through the outbox (issue 8 "Reliable delivery"; seed 004 extras). Pure.

Which outbox rows a session's changes write, what each push carries, which transport a device
takes, and when a failed push is tried again.

Three kinds of rows:
- `push`: the prompt of one notification (`mtoken.operationInit`), written with the session.
  Its key is the notification's messageId, so a repeat is the same push (same messageId, same
  apns-id); it holds ids only. The create hands it to its own process's worker with the
  session and devices it read (outbox/handoff.py); a claimed row's handler reads the device at
  send time, so a token refreshed before a retry is the one used.
- `push.finished`: a session ended; its handler expands it into one `push.silent` row per
  active device of the user (the one that answered excepted), read when it runs. Not written
  when the session reached one device only and that device answered.
- `push.silent`: one silent `mtoken.operationFinished` to one device, so its prompt goes.
- `push.notice`: one silent push of given extras to one device: `mtoken.statusChange` when a
  device's registration changes under it (`STATUS_CHANGES`), `mtoken.inboxMessage.new` for a
  new inbox message (inbox/). A status change goes to a blocked or removed device too: it is
  the device that must learn of it.

`notificationCount` rule: a session counts one notification per active device it fanned out
to (a device without a push transport is reached by polling, so it counts); a push that
failed for good (its token is dead, the provider refused it, or its retries ran out before the
deadline) is taken off the count.
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from pushgate.changes import Change, DeviceChange, SessionChange
from pushgate.devices.model import Device
from pushgate.outbox.model import OutboxMessage, RetryPolicy
from pushgate.sessions.machine import Event
from pushgate.sessions.model import Notification, PushSession
from pushgate.transports.base import MAX_COLLAPSE_ID_BYTES, PushRequest

KIND = "push"
FINISHED_KIND = "push.finished"
SILENT_KIND = "push.silent"
NOTICE_KIND = "push.notice"

# The transports a device can take: its `communicationType`, or SNS for a device whose push
# token is an SNS platform endpoint ARN (made at registration, as AM does).
APNS, FCM, WEBPUSH, SNS = "apns", "gcm", "webpush", "sns"
TRANSPORTS = (APNS, FCM, WEBPUSH, SNS)
SNS_ENDPOINT = re.compile(r"arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:endpoint/\S+")

# Seed 004: the operation's name when the session has none.
DEFAULT_OPERATION_NAME = "login"
OPERATION_INIT = "mtoken.operationInit"
OPERATION_FINISHED = "mtoken.operationFinished"
STATUS_CHANGE = "mtoken.statusChange"
INBOX_MESSAGE_NEW = "mtoken.inboxMessage.new"
# A status change or an inbox announcement is worth delivering for this long (the app polls
# its status and its inbox on start anyway).
NOTICE_TTL_MS = 60 * 60_000
# The device changes the app is told of: those it did not make itself. Its own registration is
# not one (the app that registered knows; issue 10 adds blocking and removal by an admin).
STATUS_CHANGES = frozenset({"device.removed", "device.blocked", "device.unblocked"})
OPERATION_RESULTS: Mapping[Event, str] = {
    Event.APPROVE: "authentication.success",
    Event.DENY: "authentication.fail",
    Event.FAIL: "authentication.fail",
    Event.EXPIRE: "operation.timeout",
    Event.CANCEL: "operation.canceled",
}

# A finished push is worth sending while the prompt could still be on screen, and a little
# after (an expiry ends the session at its deadline, and the tray entry should still go).
SILENT_GRACE_MS = 5 * 60_000

# Retries: the first within a second or so (issue 8: within 5 s), growing to a minute, never
# past the session's deadline. The handler gives up itself after MAX_ATTEMPTS, counting the
# push as failed; the worker's limit is above it, for handler errors only.
MAX_ATTEMPTS = 20
RETRY_POLICY = RetryPolicy(base_ms=1_000, cap_ms=60_000, max_attempts=MAX_ATTEMPTS + 5)


def route(device: Device, available: Collection[str]) -> str | None:
    """The transport that reaches `device`, None when it is served by polling only."""
    if SNS_ENDPOINT.fullmatch(device.push_token):
        return SNS if SNS in available else None
    kind = device.communication_type.lower()
    return kind if kind in (APNS, FCM, WEBPUSH) and kind in available else None


@dataclass(frozen=True, slots=True)
class PushFollower:
    """Writes the push rows of a session's changes, in the change's own commit."""

    available: frozenset[str]

    def __call__(self, change: Change) -> Iterable[OutboxMessage]:
        if not self.available:
            return ()
        if isinstance(change, DeviceChange):
            return status_rows(change, self.available)
        if not isinstance(change, SessionChange):
            return ()
        session = change.session
        if change.event is None:
            return self._prompts(change)
        if change.message_id is not None and session.notification_count <= 1:
            # The one device the session reached answered it: no other prompt to take away
            # (most users have one device, and this saves the fan-out's reads and commit).
            return ()
        if session.notification_count == 0:
            return ()  # no push arrived and no device polls: no prompt to take away
        return (
            OutboxMessage(
                FINISHED_KIND,
                session.realm,
                session.id,
                {
                    "session": session.id,
                    "result": OPERATION_RESULTS[change.event],
                    "answered": change.message_id,
                },
            ),
        )

    def _prompts(self, change: SessionChange) -> list[OutboxMessage]:
        devices = {device.id: device for device in change.devices}
        messages = []
        for notification in change.notifications:
            device = devices.get(notification.device_id)
            # A caller that did not say which devices: the handler decides at send time.
            if device is not None and route(device, self.available) is None:
                continue
            messages.append(
                OutboxMessage(
                    KIND,
                    change.session.realm,
                    notification.message_id,
                    {"messageId": notification.message_id, "session": change.session.id},
                )
            )
        return messages


def silent_rows(
    session: PushSession, result: str, devices: Iterable[Device], available: Collection[str]
) -> list[OutboxMessage]:
    return [
        OutboxMessage(
            SILENT_KIND,
            session.realm,
            f"{session.id}:{device.id}",
            {"session": session.id, "mechanismUid": device.mechanism_uid, "result": result},
        )
        for device in devices
        if route(device, available) is not None
    ]


def notice_row(
    device: Device,
    key: str,
    extras: Mapping[str, str],
    at_ms: int,
    *,
    topic: str,
    any_status: bool = False,
) -> OutboxMessage:
    """A `push.notice` row: the silent push of `extras` to `device`; `key` names the push (its
    messageId and idempotency key), unique per device; `topic` is its kind of notice."""
    return OutboxMessage(
        NOTICE_KIND,
        device.realm,
        f"{device.id}:{key}",
        {
            "mechanismUid": device.mechanism_uid,
            "messageId": f"NOTICE:{device.id}:{key}",
            "extras": dict(extras),
            "expiresMs": at_ms + NOTICE_TTL_MS,
            # One per device and kind of notice: a newer one replaces one still undelivered.
            "collapseId": f"{topic}:{device.id}"[:MAX_COLLAPSE_ID_BYTES],
            "anyStatus": any_status,
        },
    )


def status_rows(change: DeviceChange, available: Collection[str]) -> list[OutboxMessage]:
    """Seed 004 "Registration Lifecycle": the device's registration status changed."""
    device = change.device
    if change.type not in STATUS_CHANGES or route(device, available) is None:
        return []
    extras = {"messageType": STATUS_CHANGE, "activationId": device.mechanism_uid}
    key = f"status:{change.type}:{change.at_ms}"
    return [notice_row(device, key, extras, change.at_ms, topic="status", any_status=True)]


def inbox_rows(
    inbox_id: str, devices: Iterable[Device], at_ms: int, available: Collection[str]
) -> list[OutboxMessage]:
    """Seed 004 "Message Inbox": one announcement per device of the user with a transport."""
    extras = {"messageType": INBOX_MESSAGE_NEW, "inboxId": inbox_id}
    return [
        notice_row(device, f"inbox:{inbox_id}", extras, at_ms, topic="inbox")
        for device in devices
        if route(device, available) is not None
    ]


def notice_request(payload: Mapping[str, object], device: Device) -> PushRequest:
    extras = payload["extras"]
    assert isinstance(extras, dict)
    return PushRequest(
        token=device.push_token,
        message_id=str(payload["messageId"]),
        expires_ms=int(str(payload["expiresMs"])),
        collapse_id=str(payload["collapseId"]),
        extras={str(k): str(v) for k, v in extras.items()},
    )


def _operation_extras(session: PushSession, device: Device) -> dict[str, str]:
    name = session.operation.name if session.operation else DEFAULT_OPERATION_NAME
    return {"operationId": session.id, "operationName": name, "activationId": device.mechanism_uid}


def prompt_request(
    notification: Notification, session: PushSession, device: Device, jwt: str
) -> PushRequest:
    """The visible push of a notification: the push JWT and the `operationInit` extras."""
    content = session.content
    return PushRequest(
        token=device.push_token,
        message_id=notification.message_id,
        expires_ms=session.expires_ms,
        collapse_id=session.id,  # a re-send, or the finished push, replaces it
        jwt=jwt,
        title=content.title if content.body else None,
        body=content.message,
        push_type=session.push_type.value,
        extras={"messageType": OPERATION_INIT, **_operation_extras(session, device)},
    )


def silent_deadline(session: PushSession) -> int:
    return max(session.expires_ms, session.updated_ms + SILENT_GRACE_MS)


def finished_request(session: PushSession, device: Device, result: str) -> PushRequest:
    """The silent push that clears a finished session's prompt on one device."""
    return PushRequest(
        token=device.push_token,
        message_id=f"FINISHED:{session.id}:{device.id}",
        expires_ms=silent_deadline(session),
        collapse_id=session.id,  # replaces the prompt where the provider still holds it
        extras={
            "messageType": OPERATION_FINISHED,
            "mtokenOperationResult": result,
            **_operation_extras(session, device),
        },
    )


def retry_delay_ms(
    attempts: int, retry_after_seconds: float | None, rng: random.Random | None = None
) -> int:
    """Backoff with full jitter, never sooner than the provider's `Retry-After`."""
    backoff = RETRY_POLICY.delay_ms(attempts, rng)
    if retry_after_seconds is None:
        return backoff
    return max(backoff, int(retry_after_seconds * 1000))
