"""What the issue-10 instrumentation costs, in CPU per call, without a server or a database:
the request middleware (request id, `X-Request-Id`, the route's duration), the session and
delivery hooks, one JSON log line, and a scrape. docs/PERFORMANCE.md "Issue 10: metrics and
request ids" has the figures; `benchmarks/driver.py` measures the whole cycle.

    .venv/bin/python benchmarks/metrics_overhead.py [--rounds 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Callable

from pushgate.api.observe import Observe
from pushgate.logs import REQUEST_ID, JsonFormatter
from pushgate.metrics import Exposition, Metrics, OutboxGauge
from pushgate.protocol.push_payload import PushType
from pushgate.sessions.machine import Event
from pushgate.sessions.model import Content, PushSession, SessionStatus


class _Route:
    path = "/v1/push/sessions/{id}"


async def _endpoint(scope: dict[str, object], receive: object, send: Callable[..., object]) -> None:
    scope["route"] = _Route  # what Starlette's router leaves in the scope
    await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]


async def _send(_message: object) -> None:
    return None


async def _receive() -> dict[str, object]:
    return {"type": "http.request", "body": b""}


def _per_call(rounds: int, work: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        work()
    return (time.perf_counter() - started) / rounds * 1e6


async def _per_request(rounds: int, app: Callable[..., object]) -> float:
    headers = [(b"host", b"pushgate"), (b"x-api-key", b"k" * 43)]
    started = time.perf_counter()
    for _ in range(rounds):
        scope = {"type": "http", "path": "/v1/push/sessions/x", "headers": headers}
        await app(scope, _receive, _send)  # type: ignore[misc]
    return (time.perf_counter() - started) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200_000)
    rounds = parser.parse_args().rounds
    metrics = Metrics()
    bare = asyncio.run(_per_request(rounds, _endpoint))
    observed = asyncio.run(_per_request(rounds, Observe(_endpoint, metrics)))  # type: ignore[arg-type]
    session = PushSession(
        id="s",
        realm="/",
        username="alice",
        user_id="u",
        status=SessionStatus.APPROVED,
        content=Content("Sign in"),
        push_type=PushType.DEFAULT,
        notification_count=1,
        detail=None,
        created_ms=0,
        expires_ms=60_000,
        updated_ms=4_000,
    )
    created = _per_call(rounds, lambda: metrics.session_changed(session, None))
    answered = _per_call(rounds, lambda: metrics.session_changed(session, Event.APPROVE))
    delivered = _per_call(rounds, lambda: metrics.delivery("gcm", "delivered"))
    formatter = JsonFormatter()
    record = logging.LogRecord(
        "pushgate.sessions", logging.INFO, "", 0, "session answered", None, None
    )
    record.fields = {"realm": "/", "session": "s", "status": "accepted", "device": "d"}
    REQUEST_ID.set("3f2c9e1a6b1d4c8e9a7b2d5e8f0c1a2b")
    line = _per_call(rounds, lambda: formatter.format(record))
    exposition = Exposition(metrics)
    scrape = _per_call(max(1, rounds // 1000), lambda: exposition.render(OutboxGauge(3, 0.5)))
    print(
        f"request middleware: {observed - bare:6.2f} µs per request ({bare:.2f} → {observed:.2f})"
    )
    print(f"session created:    {created:6.2f} µs")
    print(f"session answered:   {answered:6.2f} µs (counter and histogram)")
    print(f"delivery counted:   {delivered:6.2f} µs")
    print(f"JSON log line:      {line:6.2f} µs (ISO time, request id)")
    print(f"one scrape:         {scrape:6.0f} µs (render only; plus one outbox query per 5 s)")


if __name__ == "__main__":
    main()
