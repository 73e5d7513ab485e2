"""The client's pure parts: sessions from JSON (unknown fields kept) and the SSE parser."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pushgate.client import Session
from pushgate.client.sse import EventParser, ServerSentEvent

TODAY = {
    "id": "8131452a-f7c2-49f3-a449-c263424d0d39",
    "status": "sent",
    "notificationCount": 1,
    "detail": None,
    "expiresAt": "2026-12-02T04:26:59.239Z",
    "updatedAt": "2026-12-02T04:25:59.239Z",
}


def test_a_session_of_today() -> None:
    session = Session.from_json(TODAY)
    assert session.expires_at == datetime(2026, 12, 2, 4, 26, 59, 239000, tzinfo=UTC)
    assert (session.push_type, session.failure_count, session.context) == (None, None, None)
    assert session.raw == TODAY
    assert not session.terminal


def test_newer_fields_are_read_and_unknown_ones_kept() -> None:
    data = {
        **TODAY,
        "status": "rejected",
        "pushType": "challenge",
        "challengeNumber": "42",
        "context": {"remoteIp": "192.0.2.1"},
        "operation": {"name": "login", "data": "A1*A100CZK"},
        "operationId": "op-1",
        "denyReason": "UNEXPECTED_OPERATION",
        "failureCount": 2,
        "somethingNew": [1, 2],
    }
    session = Session.from_json(data)
    assert (session.push_type, session.challenge_number, session.deny_reason) == (
        "challenge",
        "42",
        "UNEXPECTED_OPERATION",
    )
    assert (session.operation_id, session.failure_count) == ("op-1", 2)
    assert session.context == {"remoteIp": "192.0.2.1"}
    assert session.raw["somethingNew"] == [1, 2]
    assert session.terminal


@pytest.mark.parametrize("missing", ["id", "status", "expiresAt"])
def test_a_body_that_is_no_session_is_refused(missing: str) -> None:
    with pytest.raises(ValueError, match="not a push session"):
        Session.from_json({k: v for k, v in TODAY.items() if k != missing})


def parse(lines: list[str]) -> list[ServerSentEvent]:
    parser = EventParser()
    return [event for line in lines if (event := parser.line(line)) is not None]


def test_sse_events_comments_and_folded_data() -> None:
    lines = [
        ": keep-alive",
        "",
        "event: session",
        "id: 1",
        'data: {"a":',
        "data:1}",
        "",
        "retry: 100",
        "data",
        "",
        "event: ignored-without-data",
        "",
    ]
    assert parse(lines) == [
        ServerSentEvent("session", '{"a":\n1}', "1"),
        ServerSentEvent("message", "", "1"),  # `id` carries over, as the standard says
    ]


def test_an_unfinished_event_is_not_dispatched() -> None:
    assert parse(["event: session", "data: {}"]) == []
