"""Replaying a delivered webhook to the relying party's verifier (security.md §9 C7), on SQLite
and PostgreSQL: webhooks pushgate really delivered to a receiver on loopback, replayed to
`pushgate.client.verify_webhook` and to the receiving example of docs/WEBHOOKS.md ("Handling
each event once"), which refuses an old timestamp or an altered request and handles each
`webhook-id` once, a replay and a retry included."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pushgate.client import WebhookEvent, WebhookVerificationError, verify_webhook
from pushgate.services import Services
from pushgate.webhooks.signing import TOLERANCE_SECONDS
from tests.api.helpers import Api
from tests.relying.support import Subscribed, deliver, webhook_receiver
from tests.support import FakeClock
from tests.webhooks.receiver import Received

DOCS = Path(__file__).parents[2] / "docs" / "WEBHOOKS.md"


class Moment:
    """The receiving example's `time` module: the clock the test says."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def time(self) -> float:
        return self.seconds


class Example:
    """docs/WEBHOOKS.md's receiving example, run as written (its clock replaced)."""

    def __init__(self) -> None:
        text = DOCS.read_text()
        section = text.split("### Handling each event once", 1)[1]
        found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
        assert found, "docs/WEBHOOKS.md lost its dedupe example"
        self.processed: list[WebhookEvent] = []
        self.namespace: dict[str, Any] = {}
        exec(compile(found.group(1), str(DOCS), "exec"), self.namespace)  # the docs' own code
        self.namespace["process"] = self.processed.append
        self.clock = Moment(0)
        self.namespace["time"] = self.clock

    def handle(self, secret: str, received: Received, at: float, **changes: Any) -> int:
        self.clock.seconds = at
        headers = {**received.headers, **changes.get("headers", {})}
        status: int = self.namespace["handle"](secret, headers, changes.get("body", received.body))
        return status


async def _one_delivered(api: Api, hook: Subscribed) -> Received:
    """A real `session.accepted`, as the receiver got it."""
    await api.user("/", "alice")
    key = await api.key()
    phone = await api.register("/", "alice")
    session = await api.create_session(key, "alice")
    assert (await api.answer(phone, await api.push(phone))).status_code == 200
    await deliver(api.services)
    [received] = hook.receiver.received
    assert received.event["type"] == "session.accepted"
    assert received.event["data"]["id"] == session["id"]
    return received


async def test_a_replay_outside_the_window_is_refused(api: Api, services: Services) -> None:
    async with webhook_receiver(services, "session.accepted") as hook:
        received = await _one_delivered(api, hook)
    sent_at = received.timestamp
    assert sent_at == services.clock.now_ms() // 1000

    assert verify_webhook(hook.secret, received.headers, received.body, now=sent_at).type == (
        "session.accepted"
    )
    last = sent_at + TOLERANCE_SECONDS
    assert verify_webhook(hook.secret, received.headers, received.body, now=last)
    for late in (last + 1, sent_at + 3600, sent_at - TOLERANCE_SECONDS - 1):
        with pytest.raises(WebhookVerificationError, match="tolerance"):
            verify_webhook(hook.secret, received.headers, received.body, now=late)


async def test_an_altered_replay_is_refused(api: Api, services: Services) -> None:
    async with webhook_receiver(services, "session.accepted") as hook:
        received = await _one_delivered(api, hook)
    now = received.timestamp
    fresh = str(now + 10)
    body = received.body
    altered = [
        (received.headers, body.replace(b'"accepted"', b'"rejected"')),  # another outcome
        (received.headers, body + b" "),  # a byte more
        ({**received.headers, "webhook-timestamp": fresh}, body),  # made to look recent
        ({**received.headers, "webhook-id": "msg_" + "0" * 32}, body),  # another id
    ]
    for headers, sent in altered:
        with pytest.raises(WebhookVerificationError, match="no signature matches"):
            verify_webhook(hook.secret, headers, sent, now=now)
    with pytest.raises(WebhookVerificationError):
        verify_webhook("whsec_" + "A" * 43 + "=", received.headers, body, now=now)


async def test_the_documented_receiver_handles_each_event_once(
    api: Api, services: Services, clock: FakeClock
) -> None:
    example = Example()
    async with webhook_receiver(services, "session.accepted") as hook:
        hook.receiver.statuses = [500]  # the first attempt fails: a retry follows
        await api.user("/", "alice")
        key = await api.key()
        phone = await api.register("/", "alice")
        session = await api.create_session(key, "alice")
        assert (await api.answer(phone, await api.push(phone))).status_code == 200
        await deliver(services)
        clock.advance(6)  # past the first retry's wait (at most 5 s)
        await deliver(services)
        first, retry = hook.receiver.received
        keep = example.namespace["KEEP_SECONDS"]
        assert keep >= TOLERANCE_SECONDS  # forgotten only once a copy no longer verifies
        clock.advance(keep + 1)
        later = await api.create_session(key, "alice")
        assert (await api.answer(phone, await api.push(phone))).status_code == 200
        await deliver(services)
        _, _, next_day = hook.receiver.received
    assert first.id == retry.id and first.body == retry.body  # one event, two attempts
    assert first.timestamp < retry.timestamp

    assert example.handle(hook.secret, first, first.timestamp) == 200
    assert [e.data["id"] for e in example.processed] == [session["id"]]
    # The retry verifies (new timestamp, new signature) but is the same event.
    assert example.handle(hook.secret, retry, retry.timestamp) == 200
    # A copy of the first request, replayed within the window.
    assert example.handle(hook.secret, first, first.timestamp + 60) == 200
    assert len(example.processed) == 1
    # Replayed later: the timestamp gives it away, whatever the example remembers.
    assert example.handle(hook.secret, first, first.timestamp + 301) == 400
    altered = {"body": first.body.replace(b'"accepted"', b'"rejected"')}
    assert example.handle(hook.secret, first, first.timestamp, **altered) == 400
    assert len(example.processed) == 1

    # A day later: the next event is handled, and the old id is forgotten (bounded memory).
    assert example.handle(hook.secret, next_day, next_day.timestamp) == 200
    assert [e.data["id"] for e in example.processed] == [session["id"], later["id"]]
    assert list(example.namespace["seen"]) == [next_day.id]
