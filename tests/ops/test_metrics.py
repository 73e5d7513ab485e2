"""`/metrics` through the app (issue 10, "Seeing what it does"): each metric moves with what
it counts, on SQLite and PostgreSQL; routes are templates; the optional bearer token."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from pushgate.api.app import create_app
from pushgate.outbox.model import OutboxMessage
from pushgate.services import Services
from tests.api.helpers import Api
from tests.ops.helpers import sample, series


async def _scrape(api: Api) -> str:
    reply = await api.client.get("/metrics")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    return reply.text


async def test_a_cycle_moves_the_session_metrics(api: Api) -> None:
    await api.user("/", "alice")
    await api.allow_many_sessions()
    key = await api.key()
    phone = await api.register("/", "alice")
    before = await _scrape(api)
    assert sample(before, "pushgate_sessions_created_total") == 0
    assert sample(before, "pushgate_answer_seconds_count") == 0

    await api.create_session(key, "alice")
    push = await api.push(phone)
    api.advance(4)  # the person takes four seconds
    assert (await api.answer(phone, push)).status_code == 200
    await api.create_session(key, "alice")
    assert (await api.answer(phone, await api.push(phone), approve=False)).status_code == 200
    assert (await api.cancel(key, (await api.create_session(key, "alice"))["id"])).is_success
    await api.create_session(key, "nobody")  # no device: fails at once

    text = await _scrape(api)
    assert sample(text, "pushgate_sessions_created_total") == 4
    finished = {
        labels["status"]: sample(text, "pushgate_sessions_finished_total", **labels)
        for labels in series(text, "pushgate_sessions_finished_total")
    }
    assert finished == {
        "approved": 1,
        "denied": 1,
        "canceled": 1,
        "failed": 1,
        "expired": 0,
    }
    # Two answers: one after 4 s, one at once (the fake clock did not move).
    assert sample(text, "pushgate_answer_seconds_count") == 2
    assert sample(text, "pushgate_answer_seconds_sum") == 4
    assert sample(text, "pushgate_answer_seconds_bucket", le="3.0") == 1
    assert sample(text, "pushgate_answer_seconds_bucket", le="5.0") == 2


async def test_an_expiry_counts_once(api: Api) -> None:
    await api.user("/", "alice")
    key = await api.key()
    await api.register("/", "alice")
    session = await api.create_session(key, "alice", secondsToExpire=5)
    api.advance(6)
    assert await api.services.sessions.expire_due() == 1
    assert await api.status(key, session["id"]) == "expired"  # a read after: no second count
    text = await _scrape(api)
    assert sample(text, "pushgate_sessions_finished_total", status="expired") == 1
    assert sample(text, "pushgate_answer_seconds_count") == 0


async def test_request_durations_are_labelled_with_route_templates(api: Api) -> None:
    key = await api.key()
    for session_id in ("a" * 8, "b" * 8, "c" * 8):
        await api.get_session(key, session_id)  # 404s, each its own raw path
    await api.client.get("/no/such/path")
    await api.client.get("/another/unknown")
    text = await _scrape(api)
    routes = {
        labels["route"] for labels in series(text, "pushgate_http_request_duration_seconds_count")
    }
    assert "/v1/push/sessions/{id}" in routes
    assert "unmatched" in routes
    assert not any("aaaa" in route or "unknown" in route for route in routes)
    count = sample(
        text, "pushgate_http_request_duration_seconds_count", route="/v1/push/sessions/{id}"
    )
    assert count == 3
    assert sample(text, "pushgate_http_request_duration_seconds_count", route="unmatched") == 2


async def test_outbox_gauges_read_the_outbox_at_scrape_time(api: Api) -> None:
    text = await _scrape(api)
    assert sample(text, "pushgate_outbox_depth") == 0
    assert sample(text, "pushgate_outbox_oldest_seconds") == 0
    now = api.now_ms()
    async with api.services.store.transaction() as tx:
        await tx.outbox.add(
            [
                OutboxMessage("ops.test", "/", "one"),
                OutboxMessage("ops.test", "/", "two", not_before_ms=now + 60_000),
            ],
            now,
        )
    api.advance(30)  # past the scrape cache; the first row has been due for 30 s
    text = await _scrape(api)
    assert sample(text, "pushgate_outbox_depth") == 2
    assert sample(text, "pushgate_outbox_oldest_seconds") == 30


async def test_the_metrics_token_guards_the_endpoint(services: Services) -> None:
    guarded = services.settings.model_copy(update={"metrics_token": "s3cret-metrics-token"})
    app = create_app(dataclasses.replace(services, settings=guarded), close_store=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        missing = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = await http.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"})
        health = await http.get("/healthz")
    assert missing.status_code == wrong.status_code == 401
    assert missing.json() == {"code": "unauthorized", "message": "a valid bearer token is required"}
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert right.status_code == 200
    assert "pushgate_sessions_created_total" in right.text
    assert health.status_code == 200  # probes need no token


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_probes_are_not_behind_the_api_key(api: Api, path: str) -> None:
    assert (await api.client.get(path)).status_code == 200
