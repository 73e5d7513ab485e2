"""Session and registration expiry on the fake clock (security.md §9 D1, D5; seed 003).

The deadline is exclusive: at `expiresAt` a session already reads `expired`. A session past its
deadline reads `expired` before the sweeper reaches it, an answer after the deadline is refused,
and whichever of a read or the sweeper writes the expiry down first, it is written once.
"""

from __future__ import annotations

import httpx
import pytest

from pushgate.services import Services
from pushgate.simulator import new_device, new_mechanism_uid, registration_body
from tests.api.helpers import REFUSED, Api, Phone


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


async def _alice(api: Api) -> tuple[str, Phone]:
    await api.user("/", "alice")
    await api.allow_many_sessions()
    return await api.key(), await api.register("/", "alice")


# D1 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("approve", [True, False], ids=["approve", "deny"])
async def test_d1_an_answer_one_second_before_the_deadline_counts(api: Api, approve: bool) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice", secondsToExpire=60)
    push = await api.push(phone)
    api.advance(59)
    assert await api.status(key, session["id"]) == "sent"

    response = await api.answer(phone, push, approve=approve)

    assert (response.status_code, response.content) == (200, b"{}")
    expected = "accepted" if approve else "rejected"
    api.advance(2)  # past the deadline now; the answer stands
    assert await api.status(key, session["id"]) == expected
    assert await api.services.sessions.expire_due() == 0
    assert await api.terminal_events(session["id"]) == ["session.answered"]


@pytest.mark.parametrize("late_by", [0, 1, 3600])
@pytest.mark.parametrize("approve", [True, False], ids=["approve", "deny"])
async def test_d1_an_answer_at_or_after_the_deadline_is_refused(
    api: Api, approve: bool, late_by: int
) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice", secondsToExpire=60)
    push = await api.push(phone)
    body = api.answer_body(phone, push, approve=approve)
    api.advance(60 + late_by)

    response = await api.post(phone.authenticate_url, body)

    assert (response.status_code, response.json()) == (400, REFUSED)
    assert await api.stored_status(session["id"]) == "PENDING"  # the refusal wrote nothing
    data = (await api.get_session(key, session["id"])).json()
    assert data["status"] == "expired"
    assert data["expiresAt"] == session["expiresAt"]
    assert await api.terminal_events(session["id"]) == ["session.expired"]


async def test_d1_cancel_after_the_deadline_is_409_and_stays_expired(api: Api) -> None:
    key, _phone = await _alice(api)
    session = await api.create_session(key, "alice", secondsToExpire=60)
    api.advance(61)

    response = await api.cancel(key, session["id"])

    assert response.status_code == 409
    assert response.json()["code"] == "badRequest"
    assert await api.status(key, session["id"]) == "expired"


async def test_d1_default_lifetime_is_one_day(api: Api) -> None:
    key, phone = await _alice(api)
    early = await api.create_session(key, "alice", secondsToExpire=0)
    late = await api.create_session(key, "alice")
    pushes = await api.pending(phone)
    api.advance(86_399)
    assert (await api.answer(phone, pushes[0])).status_code == 200
    api.advance(1)

    assert (await api.answer(phone, pushes[1])).status_code == 400
    statuses = {await api.status(key, early["id"]), await api.status(key, late["id"])}
    assert statuses == {"accepted", "expired"}


# D5 ------------------------------------------------------------------------------------------


async def test_d5_pending_drops_a_push_at_its_deadline(api: Api) -> None:
    key, phone = await _alice(api)
    short = await api.create_session(key, "alice", secondsToExpire=60)
    long = await api.create_session(key, "alice", secondsToExpire=120)
    api.advance(59)
    assert len(await api.pending(phone)) == 2

    api.advance(1)
    (remaining,) = await api.pending(phone)

    assert remaining.claims["t"] == "120"
    assert await api.stored_status(short["id"]) == "PENDING"  # polling does not write
    api.advance(60)
    assert await api.pending(phone) == []
    assert await api.services.sessions.expire_due() == 2
    assert await api.pending(phone) == []
    assert await api.status(key, long["id"]) == "expired"


# the sweeper ---------------------------------------------------------------------------------


async def test_sweeper_expires_only_pending_sessions_past_their_deadline(api: Api) -> None:
    key, phone = await _alice(api)
    answered = await api.create_session(key, "alice", secondsToExpire=10)
    assert (await api.answer(phone, await api.push(phone))).status_code == 200
    canceled = await api.create_session(key, "alice", secondsToExpire=10)
    assert (await api.cancel(key, canceled["id"])).status_code == 200
    failed = await api.create_session(key, "nobody", secondsToExpire=10)
    sessions = {
        ttl: await api.create_session(key, "alice", secondsToExpire=ttl) for ttl in (10, 20, 30)
    }

    api.advance(25)
    assert await api.services.sessions.expire_due() == 2
    assert await api.services.sessions.expire_due() == 0

    stored = {ttl: await api.stored_status(s["id"]) for ttl, s in sessions.items()}
    assert stored == {10: "EXPIRED", 20: "EXPIRED", 30: "PENDING"}
    assert await api.stored_status(answered["id"]) == "APPROVED"
    assert await api.stored_status(canceled["id"]) == "CANCELED"
    assert await api.stored_status(failed["id"]) == "FAILED"
    for ttl in (10, 20):
        assert await api.terminal_events(sessions[ttl]["id"]) == ["session.expired"]
        assert await api.status(key, sessions[ttl]["id"]) == "expired"
        assert await api.terminal_events(sessions[ttl]["id"]) == ["session.expired"]


async def test_a_read_past_the_deadline_writes_the_expiry_once(api: Api) -> None:
    key, _phone = await _alice(api)
    session = await api.create_session(key, "alice", secondsToExpire=30)
    api.advance(30)

    assert await api.stored_status(session["id"]) == "PENDING"
    assert await api.status(key, session["id"]) == "expired"
    assert await api.stored_status(session["id"]) == "EXPIRED"
    assert await api.status(key, session["id"]) == "expired"
    assert await api.services.sessions.expire_due() == 0
    assert await api.terminal_events(session["id"]) == ["session.expired"]


# registration links expire too ---------------------------------------------------------------


@pytest.mark.parametrize(("after", "accepted"), [(299, True), (300, False), (3600, False)])
async def test_a_registration_qr_code_expires_after_300_seconds(
    api: Api, after: int, accepted: bool
) -> None:
    await api.user("/", "alice")
    uri = await api.start("/", "alice")
    body = registration_body(uri, new_mechanism_uid(), new_device())
    api.advance(after)
    before = await api.snapshot()

    response = await api.post(uri.register_url, body)

    if accepted:
        assert (response.status_code, response.content) == (200, b"{}")
        assert await api.count("devices") == 1
    else:
        assert (response.status_code, response.json()) == (400, REFUSED)
        assert await api.snapshot() == before
