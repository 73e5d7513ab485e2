"""`Idempotency-Key` on `POST /v1/push/sessions` (issue 7; security.md §9 F4), on SQLite and
PostgreSQL: the same key and body within 24 hours is the same session and sends nothing new,
another body is 422 `invalidRequest`, a key older than 24 hours starts over; concurrent
creates with one key make one session; and on PostgreSQL a create retried with its key
after the server was killed with `kill -9` right after its 201 finds the same session.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path

import httpx
import pytest

from pushgate.api.app import create_app
from pushgate.clock import SystemClock
from pushgate.services import Services
from pushgate.sessions.service import IDEMPOTENCY_MS
from pushgate.settings import Settings
from pushgate.simulator.client import DeviceClient
from pushgate.simulator.device import new_device
from pushgate.wiring import build_services
from tests.api.helpers import Api, Phone, audit_events, count_rows
from tests.relying.support import SESSIONS, free_port, pushgate_serve
from tests.support import FakeClock

BODY = {"user": "alice", "notification": {"title": "Sign in to Example"}}
RACERS = 20
ROUNDS = 10


async def _alice(api: Api) -> tuple[str, Phone]:
    await api.user("/", "alice")
    return await api.key(), await api.register("/", "alice")


async def _create(api: Api, key: str, idempotency_key: str, body: object = BODY) -> httpx.Response:
    return await api.create_session_response(key, body, **{"Idempotency-Key": idempotency_key})


async def test_the_same_key_and_body_is_the_same_session_and_sends_nothing(api: Api) -> None:
    key, phone = await _alice(api)
    first = await _create(api, key, "order-1001")
    assert first.status_code == 201
    after_first = await api.snapshot()

    again = await _create(api, key, "order-1001")
    assert (again.status_code, again.json()) == (201, first.json())
    # Whitespace and member order are not the body's meaning: still the same request.
    reordered = json.dumps({"notification": {"title": "Sign in to Example"}, "user": "alice"})
    spaced = await _create(api, key, "order-1001", f"  {reordered}\n".encode())
    assert (spaced.status_code, spaced.json()["id"]) == (201, first.json()["id"])
    assert await api.snapshot() == after_first  # no session, notification, audit or outbox row
    assert len(await api.pending(phone)) == 1

    # Once answered, a retry shows the session as it is now, and still sends nothing.
    assert (await api.answer(phone, await api.push(phone))).status_code == 200
    answered = await api.snapshot()
    late = await _create(api, key, "order-1001")
    assert (late.status_code, late.json()["id"], late.json()["status"]) == (
        201,
        first.json()["id"],
        "accepted",
    )
    assert await api.snapshot() == answered
    assert await api.pending(phone) == []


@pytest.mark.parametrize(
    "other",
    [
        {**BODY, "user": "bob"},
        {**BODY, "notification": {"title": "Pay 100 CZK"}},
        {**BODY, "pushType": "challenge"},
        {**BODY, "secondsToExpire": 60},
        {"user": "alice"},
    ],
    ids=["user", "title", "pushType", "lifetime", "fewer-fields"],
)
async def test_the_same_key_with_another_body_is_refused(
    api: Api, other: dict[str, object]
) -> None:
    key, _ = await _alice(api)
    await api.user("/", "bob")
    first = await _create(api, key, "order-1001")
    assert first.status_code == 201
    before = await api.snapshot()

    refused = await _create(api, key, "order-1001", other)
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalidRequest"
    assert set(refused.json()) == {"code", "message"}
    assert await api.snapshot() == before
    assert (await _create(api, key, "order-1001")).json()["id"] == first.json()["id"]


async def test_a_key_is_remembered_for_24_hours(api: Api) -> None:
    key, phone = await _alice(api)
    first = (await _create(api, key, "order-1001")).json()
    api.advance(IDEMPOTENCY_MS / 1000 - 0.001)
    assert (await _create(api, key, "order-1001")).json()["id"] == first["id"]
    assert (await _create(api, key, "order-1001", {"user": "alice"})).status_code == 422
    api.advance(0.001)  # 24 hours to the millisecond: forgotten

    later = await _create(api, key, "order-1001")
    assert later.status_code == 201
    assert later.json()["id"] != first["id"] and later.json()["status"] == "sent"
    assert len(await api.pending(phone)) == 1
    # The key now stands for the new session, and for its body only.
    assert (await _create(api, key, "order-1001")).json()["id"] == later.json()["id"]
    assert await api.count("sessions") == 2


async def test_keys_belong_to_a_realm(api: Api) -> None:
    key, _ = await _alice(api)
    await api.realm("beta")
    await api.user("/beta", "alice")
    other_key = await api.key("/beta")
    ours = (await _create(api, key, "order-1001")).json()
    theirs = await _create(api, other_key, "order-1001")
    assert theirs.status_code == 201 and theirs.json()["id"] != ours["id"]
    # Nor does another realm's key reveal this realm's sessions.
    assert (await api.get_session(other_key, ours["id"])).status_code == 404


async def test_a_retry_is_answered_even_when_the_user_is_over_the_rate_limit(api: Api) -> None:
    key, _ = await _alice(api)
    limit = (await api.services.accounts.realm_policy("/")).creates_per_minute
    for _ in range(limit - 1):
        await api.create_session(key, "alice")
    last = await _create(api, key, "order-1001")
    assert last.status_code == 201
    assert (await api.create_session_response(key, BODY)).status_code == 429
    retried = await _create(api, key, "order-1001")  # the retry of a create that was admitted
    assert (retried.status_code, retried.json()["id"]) == (201, last.json()["id"])


@pytest.mark.parametrize("bad", ["", "a" * 256, "del\x7f", "two words"])
async def test_a_malformed_key_is_refused(api: Api, bad: str) -> None:
    key, _ = await _alice(api)
    refused = await api.create_session_response(key, BODY, **{"Idempotency-Key": bad})
    assert (refused.status_code, refused.json()["code"]) == (400, "invalidRequest")
    assert await api.count("sessions") == 0


# Concurrent creates with one key ------------------------------------------------------------------


@pytest.fixture
async def racing(services: Services, settings: Settings, clock: FakeClock) -> AsyncIterator[Api]:
    """An app whose pool has a connection for every racer (`services` emptied the tables)."""
    built = build_services(settings.model_copy(update={"db_pool_size": RACERS + 2}), clock)
    transport = httpx.ASGITransport(app=create_app(built, close_store=False))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Api(http, built)
    finally:
        await built.store.aclose()


async def race(racers: list[Callable[[], Awaitable[httpx.Response]]]) -> list[httpx.Response]:
    """All at once from a barrier, started in a shuffled order; results in the order given."""
    barrier = asyncio.Barrier(len(racers))
    order = list(range(len(racers)))
    random.shuffle(order)

    async def run(index: int) -> tuple[int, httpx.Response]:
        await barrier.wait()
        return index, await racers[index]()

    finished = await asyncio.gather(*(run(i) for i in order))
    return [response for _, response in sorted(finished, key=lambda pair: pair[0])]


async def test_concurrent_identical_creates_with_one_key_make_one_session(racing: Api) -> None:
    api = racing
    key, phone = await _alice(api)
    await api.allow_many_sessions()
    for round_ in range(ROUNDS):
        responses = await race([partial(_create, api, key, f"order-{round_}")] * RACERS)
        assert [r.status_code for r in responses] == [201] * RACERS, responses[0].text
        assert len({r.json()["id"] for r in responses}) == 1
    assert await api.count("sessions") == ROUNDS
    assert await api.count("notifications") == ROUNDS
    assert await api.count("idempotency_keys") == ROUNDS
    assert len(await api.pending(phone)) == ROUNDS


# SQLite runs one writer at a time; on PostgreSQL the creates of different users overlap, and
# only the key's own lock keeps them one at a time (it once let all of them make a session).
@pytest.mark.parametrize(
    "database_url",
    [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=[pytest.mark.postgres]),
    ],
    indirect=True,
)
async def test_concurrent_creates_with_one_key_and_other_bodies_make_one_session(
    racing: Api,
) -> None:
    api = racing
    key = await api.key()
    users = [f"user-{i}" for i in range(RACERS)]
    for user in users:
        await api.user("/", user)
        await api.register("/", user)
    for round_ in range(ROUNDS):
        creates = [partial(_create, api, key, f"order-{round_}", {"user": user}) for user in users]
        responses = await race(creates)
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [422] * (RACERS - 1), statuses
    assert await api.count("sessions") == ROUNDS


# F4: a create retried across a crash ------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_f4_a_create_retried_after_kill_9_is_the_same_session(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    """The 201 reached the client, the process died at once; the client, unsure, retries on
    the restarted server with the same key."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # The servers' own clock, and the URLs they put into QR codes.
    admin = build_services(settings.model_copy(update={"public_url": base}), SystemClock())
    try:
        await admin.accounts.create_user("/", "alice", None)
        key = (await admin.accounts.create_api_key("/")).key
        started = await admin.devices.start_registration("/", "alice")
    finally:
        await admin.store.aclose()
    headers = {"X-API-Key": key, "Idempotency-Key": "checkout-7"}
    log = tmp_path / "serve.log"
    async with DeviceClient(new_device()) as phone:
        async with (
            pushgate_serve(settings.database_url, log, port=port) as first,
            httpx.AsyncClient(base_url=base, timeout=10) as http,
        ):
            mechanism = await phone.register(started.uri)
            created = await http.post(SESSIONS, json=BODY, headers=headers)
            assert created.status_code == 201, created.text
            await first.kill()

        async with (
            pushgate_serve(settings.database_url, log, port=port),
            httpx.AsyncClient(base_url=base, timeout=10) as http,
        ):
            retried = await http.post(SESSIONS, json=BODY, headers=headers)
            assert retried.status_code == 201, retried.text
            assert retried.json()["id"] == created.json()["id"]
            assert retried.json()["status"] == "sent"
            assert len(await phone.pending(mechanism)) == 1
    assert await count_rows(services, "sessions") == 1
    assert await count_rows(services, "notifications") == 1
    assert await audit_events(services, created.json()["id"]) == ["session.created"]
