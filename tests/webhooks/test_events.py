"""Which changes are which webhook events, and what their rows hold (issue 7 "Webhooks").
Pure: the follower, the snapshot and the retry schedule without a store."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from pushgate.changes import DeviceChange, SessionChange, UserChange, UserEvent
from pushgate.devices.model import Device, DeviceStatus
from pushgate.protocol.push_payload import PushType
from pushgate.sessions.machine import Event
from pushgate.sessions.model import Content, PushSession, SessionStatus
from pushgate.sessions.wire import session_json
from pushgate.webhooks.events import (
    FANOUT_KIND,
    WebhookDirectory,
    WebhookEvent,
    WebhookFollower,
    deliveries,
    events_of,
)
from pushgate.webhooks.model import (
    KIND,
    RETRY_DELAYS_SECONDS,
    Delivery,
    EventType,
    Webhook,
    parse_allowed_hosts,
    retry_delay_ms,
)

T = 1_790_000_000_000
SESSION = PushSession(
    id="00000000-0000-4000-8000-0000000000c1",
    realm="/",
    username="alice",
    user_id="u1",
    status=SessionStatus.PENDING,
    content=Content("Sign in"),
    push_type=PushType.DEFAULT,
    notification_count=1,
    detail=None,
    created_ms=T,
    expires_ms=T + 60_000,
    updated_ms=T,
)
DEVICE = Device(
    "d1", "/", "u1", "mech-1", b"k" * 32, "tok", "ios", "apns", "iPhone", DeviceStatus.ACTIVE, T, T
)


def _hook(webhook_id: str, realm: str = "/", *events: EventType) -> Webhook:
    return Webhook(
        webhook_id,
        realm,
        f"http://127.0.0.1/{webhook_id}",
        frozenset(events) or None,
        "whsec_AAAA",
        T,
    )


def _moved(status: SessionStatus, event: Event, **fields: object) -> SessionChange:
    return SessionChange(replace(SESSION, status=status, updated_ms=T + 5, **fields), event)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "event", "expected"),
    [
        (SessionStatus.APPROVED, Event.APPROVE, "session.accepted"),
        (SessionStatus.DENIED, Event.DENY, "session.rejected"),
        (SessionStatus.EXPIRED, Event.EXPIRE, "session.expired"),
        (SessionStatus.CANCELED, Event.CANCEL, "session.canceled"),
        (SessionStatus.FAILED, Event.FAIL, "session.error"),
    ],
)
def test_each_move_is_its_event_with_the_session_as_get_shows_it(
    status: SessionStatus, event: Event, expected: str
) -> None:
    change = _moved(status, event)
    [found] = events_of(change)
    assert found.type == expected
    assert found.data == session_json(change.session, T + 5)
    body = json.loads(found.body())
    assert body == {"type": expected, "timestamp": "2026-09-21T14:13:20.005Z", "data": found.data}


def test_a_create_is_an_event_only_when_it_failed_at_once() -> None:
    assert events_of(SessionChange(SESSION, None)) == []
    [failed] = events_of(SessionChange(replace(SESSION, status=SessionStatus.FAILED), None))
    assert failed.type is EventType.SESSION_ERROR


def test_a_denial_as_fraud_is_also_a_fraud_report_written_once() -> None:
    change = _moved(SessionStatus.DENIED, Event.DENY, deny_reason="UNEXPECTED_OPERATION")
    rejected, reported = events_of(change)
    assert (rejected.type, reported.type) == ("session.rejected", "user.fraud_reported")
    assert reported.data == {"user": "alice", "realm": "/", "sessionId": SESSION.id}
    # The same report as a user change (if the sessions also emit one) is the same row.
    [again] = events_of(UserChange(UserEvent.FRAUD_REPORTED, "/", "alice", T + 5, SESSION.id))
    hooks = [_hook("w1")]
    assert deliveries(again, hooks) == deliveries(reported, hooks)
    plain = _moved(SessionStatus.DENIED, Event.DENY, deny_reason="INCORRECT_DATA")
    assert [e.type for e in events_of(plain)] == ["session.rejected"]


def test_user_and_device_events() -> None:
    [locked] = events_of(UserChange(UserEvent.LOCKED, "/", "alice", T, None))
    assert locked.type == "user.locked"
    assert locked.data == {"user": "alice", "realm": "/", "sessionId": None}
    [later] = events_of(UserChange(UserEvent.LOCKED, "/", "alice", T + 1, None))
    assert later.identity != locked.identity  # locked again later: another event
    for kind in ("device.registered", "device.removed"):
        [found] = events_of(DeviceChange(kind, DEVICE, "alice", T))  # type: ignore[arg-type]
        assert found.type == kind
        assert found.data == {
            "id": "mech-1",
            "user": "alice",
            "realm": "/",
            "name": "iPhone",
            "deviceType": "ios",
        }


def test_one_row_per_subscription_that_wants_the_event() -> None:
    directory = WebhookDirectory()
    follower = WebhookFollower(directory)
    change = _moved(SessionStatus.APPROVED, Event.APPROVE)
    assert follower(change) == []  # no runtime will load the snapshot: nothing to follow

    directory.replace(
        [
            _hook("all"),
            _hook("accepted", "/", EventType.SESSION_ACCEPTED),
            _hook("other-type", "/", EventType.SESSION_REJECTED),
            _hook("other-realm", "/alpha"),
        ]
    )
    rows = follower(change)
    assert [(m.kind, Delivery.from_payload(m.payload).webhook_id) for m in rows] == [
        (KIND, "all"),
        (KIND, "accepted"),
    ]
    assert follower(change) == rows  # the same event, the same rows (ids, keys, bodies)
    ids = [Delivery.from_payload(m.payload).message_id for m in rows]
    assert len(set(ids)) == 2 and all("." not in i for i in ids)
    assert [m.key for m in rows] == ids
    assert follower(SessionChange(SESSION, None)) == []


def test_before_the_first_load_events_wait_in_fan_out_rows() -> None:
    directory = WebhookDirectory()
    directory.expect_loading()
    change = _moved(SessionStatus.CANCELED, Event.CANCEL)
    [row] = WebhookFollower(directory)(change)
    assert row.kind == FANOUT_KIND
    event = WebhookEvent.from_payload(json.loads(json.dumps(row.payload)))
    [expected] = events_of(change)
    hooks = [_hook("w1")]
    assert deliveries(event, hooks) == deliveries(expected, hooks)  # byte for byte


def test_the_retry_schedule() -> None:
    rng = random.Random(7)
    for attempts, ceiling in enumerate(RETRY_DELAYS_SECONDS, start=1):
        for _ in range(50):
            delay = retry_delay_ms(attempts, rng)
            assert 0.75 * ceiling * 1000 <= delay <= ceiling * 1000
    assert retry_delay_ms(1, rng) <= 5_000 and retry_delay_ms(2, rng) <= 20_000
    assert 0.75 * sum(RETRY_DELAYS_SECONDS[:7]) >= 3_600  # eight attempts: over an hour


def test_allowed_hosts_setting() -> None:
    assert parse_allowed_hosts(" a.example , *.rp.test,[::1] ,") == (
        "a.example",
        "*.rp.test",
        "[::1]",
    )
    for bad in ("http://a.example", "a.example/path", "*.", "user@host"):
        with pytest.raises(ValueError, match="host name"):
            parse_allowed_hosts(bad)
