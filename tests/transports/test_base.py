"""The transport port's pure parts: the push request's checks, Retry-After, payload builders."""

from __future__ import annotations

from typing import Any

import pytest

from pushgate.transports.base import (
    PushRequest,
    apns_payload,
    data_message,
    parse_retry_after,
)

NOW_MS = 1_790_000_000_000  # 2026-09-21T14:13:20Z


def request(**changes: Any) -> PushRequest:
    fields: dict[str, Any] = {
        "token": "t",
        "message_id": "AUTHENTICATE:1",
        "expires_ms": NOW_MS + 60_000,
        "collapse_id": "s",
        "jwt": "j",
    }
    fields.update(changes)
    return PushRequest(**fields)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("999999", 3600.0),
        ("Mon, 21 Sep 2026 14:13:50 GMT", 30.0),
        ("Mon, 21 Sep 2026 13:00:00 GMT", 0.0),
        ("-5", None),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW_MS) == seconds


def test_the_request_id_is_stable_per_message_id() -> None:
    assert request().request_id == request(token="other").request_id
    assert request().request_id != request(message_id="AUTHENTICATE:2").request_id


@pytest.mark.parametrize(
    "changes",
    [
        {"token": ""},
        {"collapse_id": "x" * 65},
        {"extras": {"messageId": "x"}},
        {"extras": {"count": 1}},
    ],
)
def test_a_request_that_cannot_be_sent_is_refused_at_once(changes: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        request(**changes)


def test_extras_never_overwrite_the_push() -> None:
    push = request(extras={"messageType": "mtoken.operationInit"})
    assert data_message(push) == {
        "messageType": "mtoken.operationInit",
        "message": "j",
        "messageId": "AUTHENTICATE:1",
    }
    assert apns_payload(push)["messageType"] == "mtoken.operationInit"
    assert apns_payload(request(push_type="code"))["aps"]["category"] == "authentication"  # type: ignore[index]
