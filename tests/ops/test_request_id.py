"""Request ids and log lines (issue 10): an id per HTTP request, the caller's when well formed,
returned as `X-Request-Id` and on every JSON log line the request writes; ISO 8601 UTC `ts`."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest

from pushgate.logs import JsonFormatter
from tests.api.helpers import Api

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


class _Lines(logging.Handler):
    """Formats each record as it is emitted, in the request's own context, as stderr would."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def logged() -> Iterator[_Lines]:
    handler = _Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_a_well_formed_incoming_id_is_kept(api: Api) -> None:
    for given in ("3f2c9e1a-6b1d-4c8e-9a7b-2d5e8f0c1a2b", "req.42:abc_DEF+/="):
        reply = await api.client.get("/healthz", headers={"X-Request-Id": given})
        assert reply.headers["x-request-id"] == given


@pytest.mark.parametrize("given", ["", "has space", "x" * 129, 'quote"d', "é"])
async def test_a_malformed_incoming_id_is_replaced(api: Api, given: str) -> None:
    reply = await api.client.get("/healthz", headers={"X-Request-Id": given.encode("utf-8")})
    assert re.fullmatch(r"[0-9a-f]{32}", reply.headers["x-request-id"])


async def test_each_request_gets_its_own_id(api: Api) -> None:
    ids = {(await api.client.get("/healthz")).headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3
    error = await api.client.get("/v1/push/sessions/x")  # an error answer carries one too
    assert error.status_code == 401
    assert re.fullmatch(r"[0-9a-f]{32}", error.headers["x-request-id"])


async def test_every_line_of_a_request_carries_its_id(api: Api, logged: _Lines) -> None:
    await api.user("/", "alice")
    key = await api.key()
    phone = await api.register("/", "alice")
    await api.create_session(key, "alice")
    push = await api.push(phone)
    logged.lines.clear()
    reply = await api.client.post(
        phone.authenticate_url,
        json=api.answer_body(phone, push),
        headers={"X-Request-Id": "answer-1"},
    )
    assert reply.status_code == 200
    replay = await api.client.post(
        phone.authenticate_url,
        json=api.answer_body(phone, push),
        headers={"X-Request-Id": "replay-2"},
    )
    assert replay.status_code == 400
    await api.services.sessions.expire_due()  # outside any request: no id

    # The server's lines (httpx, the test's client, logs its own after each answer).
    lines = [line for line in logged.lines if str(line["logger"]).startswith("pushgate")]
    by_event = {str(line["event"]): line for line in lines}
    assert by_event["session answered"]["requestId"] == "answer-1"
    assert by_event["request refused"]["requestId"] == "replay-2"
    assert all(ISO_UTC.fullmatch(str(line["ts"])) for line in logged.lines)
    assert {line.get("requestId") for line in lines} == {"answer-1", "replay-2"}


def test_a_line_outside_a_request_has_no_id() -> None:
    record = logging.LogRecord("pushgate", logging.INFO, __file__, 1, "idle", None, None)
    record.created = 1_790_000_000.5
    line = json.loads(JsonFormatter().format(record))
    assert line["ts"] == "2026-09-21T14:13:20.500Z"
    assert "requestId" not in line
