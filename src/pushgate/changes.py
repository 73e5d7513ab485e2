"""What followers see of a committed change (DESIGN.md "Outbox row"). Pure.

A feature that must act after something changed (a push, a webhook) registers a *follower*: a
pure function from the change to the outbox rows that carry the work. The rows commit in the
change's own transaction, so they exist if and only if the change did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from pushgate.outbox.model import OutboxMessage

if TYPE_CHECKING:
    from pushgate.devices.model import Device
    from pushgate.sessions.machine import Event
    from pushgate.sessions.model import Notification, PushSession


@dataclass(frozen=True, slots=True)
class SessionChange:
    """A session created (`event` None, with the notifications it fans out to) or moved."""

    session: PushSession
    event: Event | None
    notifications: Sequence[Notification] = ()
    devices: Sequence[Device] = ()  # on a create: the devices the notifications go to
    message_id: str | None = None  # on an answer: the notification the device answered


@dataclass(frozen=True, slots=True)
class DeviceChange:
    """A device registered, removed, blocked or unblocked."""

    type: Literal["device.registered", "device.removed", "device.blocked", "device.unblocked"]
    device: Device
    username: str
    at_ms: int


class UserEvent(StrEnum):
    FRAUD_REPORTED = "user.fraud_reported"
    LOCKED = "user.locked"


@dataclass(frozen=True, slots=True)
class UserChange:
    """Something that happened to a user: a denial as fraud ("this wasn't me"), a lock."""

    type: UserEvent
    realm: str
    username: str
    at_ms: int
    session_id: str | None = None  # the session that caused it


Change = SessionChange | DeviceChange | UserChange
Follower = Callable[[Change], Iterable[OutboxMessage]]


def follow(change: Change, followers: Sequence[Follower]) -> tuple[OutboxMessage, ...]:
    return tuple(message for follower in followers for message in follower(change))
