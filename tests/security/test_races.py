"""Concurrency races on PostgreSQL (security.md §9 E1, E2, E4; §7).

Each round releases its racers together from an `asyncio.Barrier`. A racer is a request to the
ASGI app or, for the RP's cancel in every other E2 round, a call to the session service; each
runs its own transaction on its own pooled connection, so the races are decided by PostgreSQL's
row locks and the store's compare-and-set updates. The order the racers start in is shuffled
every round. (Over HTTP the cancel may look up its API key first, so it tends to arrive
second; the service-layer rounds let it arrive first too.)

Invariants checked every round: exactly one winner, the loser gets the documented error, the
RP reads the winner's status; and at the end, exactly one terminal audit event per session.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from pushgate.api.app import create_app
from pushgate.errors import Conflict
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.store import schema
from pushgate.wiring import build_services
from tests.api.helpers import REFUSED, TERMINAL_EVENTS, Api, connect
from tests.support import FakeClock

E1_ROUNDS = 200
E2_ROUNDS = 200
E4_ROUNDS = 30
E4_RACERS = 50


# Races are decided by PostgreSQL's row locks; SQLite serialises writers, so only the
# PostgreSQL database runs this module.
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
]


@pytest.fixture
async def api(services: Services, settings: Settings, clock: FakeClock) -> AsyncIterator[Api]:
    """An app whose pool has a connection for every racer (`services` emptied the tables)."""
    assert settings.database_url.startswith("postgresql")
    built = build_services(settings.model_copy(update={"db_pool_size": E4_RACERS}), clock)
    app = create_app(built, close_store=False)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Api(http, built)
    finally:
        await built.store.aclose()


async def race(*racers: Callable[[], Awaitable[object]]) -> list[Any]:
    """Start all racers at once, in a shuffled order; results in the order given."""
    barrier = asyncio.Barrier(len(racers))
    order = list(range(len(racers)))
    random.shuffle(order)

    async def run(index: int) -> tuple[int, object]:
        await barrier.wait()
        return index, await racers[index]()

    finished = await asyncio.gather(*(run(i) for i in order))
    return [result for _index, result in sorted(finished, key=lambda pair: pair[0])]


async def terminal_event_counts(api: Api) -> dict[str, int]:
    """Terminal audit events per session, for every session in the database."""
    a, s = schema.audit.c, schema.sessions.c
    query = (
        select(s.id, func.count(a.id))
        .select_from(
            schema.sessions.outerjoin(
                schema.audit, (a.subject == s.id) & a.event.in_(TERMINAL_EVENTS)
            )
        )
        .group_by(s.id)
    )
    async with connect(api.services) as conn:
        return {row[0]: row[1] for row in await conn.execute(query)}


def refused(response: httpx.Response) -> bool:
    return response.status_code == 400 and response.json() == REFUSED


# E1 ------------------------------------------------------------------------------------------


async def test_e1_approve_and_deny_from_two_devices(api: Api) -> None:
    await api.user("/", "alice")
    await api.allow_many_sessions()  # one user, many sessions in a row: the race is the point
    key = await api.key()
    phone_a = await api.register("/", "alice")
    phone_b = await api.register("/", "alice")
    winners = {"accepted": 0, "rejected": 0}

    for _ in range(E1_ROUNDS):
        session = await api.create_session(key, "alice")
        approve = api.answer_body(phone_a, await api.push(phone_a))
        deny = api.answer_body(phone_b, await api.push(phone_b), approve=False)

        ok_a, ok_b = await race(
            partial(api.post, phone_a.authenticate_url, approve),
            partial(api.post, phone_b.authenticate_url, deny),
        )

        outcome = sorted([ok_a.status_code, ok_b.status_code])
        assert outcome == [200, 400], (ok_a.text, ok_b.text)
        loser = ok_b if ok_a.status_code == 200 else ok_a
        assert refused(loser), loser.text
        winner = "accepted" if ok_a.status_code == 200 else "rejected"
        assert await api.status(key, session["id"]) == winner
        winners[winner] += 1

    counts = await terminal_event_counts(api)
    assert len(counts) == E1_ROUNDS
    assert set(counts.values()) == {1}
    # Both sides won some rounds: the race was run from both ends.
    assert winners["accepted"] > 0 and winners["rejected"] > 0, winners


# E2 ------------------------------------------------------------------------------------------


async def _cancel_in_service(api: Api, session_id: str) -> str:
    """The RP's cancel one layer down: no API-key lookup ahead of its transaction."""
    try:
        await api.services.sessions.cancel("/", session_id)
    except Conflict:
        return "conflict"
    return "canceled"


async def _cancel_over_http(api: Api, key: str, session_id: str) -> str:
    response = await api.cancel(key, session_id)
    if response.status_code == 200:
        assert response.json()["status"] == "canceled"
        return "canceled"
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "badRequest"
    return "conflict"


async def test_e2_approve_against_rp_cancel(api: Api) -> None:
    await api.user("/", "alice")
    await api.allow_many_sessions()  # one user, many sessions in a row: the race is the point
    key = await api.key()
    phone = await api.register("/", "alice")
    winners = {"accepted": 0, "canceled": 0}

    for round_ in range(E2_ROUNDS):
        session = await api.create_session(key, "alice")
        approve = api.answer_body(phone, await api.push(phone))
        cancel = (
            partial(_cancel_over_http, api, key, session["id"])
            if round_ % 2
            else partial(_cancel_in_service, api, session["id"])
        )

        answered, canceled = await race(partial(api.post, phone.authenticate_url, approve), cancel)

        status = await api.status(key, session["id"])
        if canceled == "canceled":
            # Never approved after a successful cancel.
            assert refused(answered), answered.text
            assert status == "canceled"
        else:
            assert (answered.status_code, answered.content) == (200, b"{}")
            assert status == "accepted"
        winners[status] += 1

    counts = await terminal_event_counts(api)
    assert len(counts) == E2_ROUNDS
    assert set(counts.values()) == {1}
    assert winners["accepted"] > 0 and winners["canceled"] > 0, winners


# E4 ------------------------------------------------------------------------------------------


async def test_e4_fifty_identical_approves_make_one_approval(api: Api) -> None:
    await api.user("/", "alice")
    await api.allow_many_sessions()  # one user, many sessions in a row: the race is the point
    key = await api.key()
    phone = await api.register("/", "alice")

    for _ in range(E4_ROUNDS):
        session = await api.create_session(key, "alice")
        approve = api.answer_body(phone, await api.push(phone))

        responses = await race(*[partial(api.post, phone.authenticate_url, approve)] * E4_RACERS)

        assert [r.status_code for r in responses].count(200) == 1
        assert all(refused(r) for r in responses if r.status_code != 200)
        assert await api.status(key, session["id"]) == "accepted"

    counts = await terminal_event_counts(api)
    assert len(counts) == E4_ROUNDS
    assert set(counts.values()) == {1}
    async with connect(api.services) as conn:
        answered = await conn.execute(
            select(func.count()).where(schema.notifications.c.answered_ms.is_not(None))
        )
        assert answered.scalar_one() == E4_ROUNDS
