"""Anti-fatigue limits on `/v1` (security.md §9 G1, G2, G4; issue 7 "Anti-fatigue and limits"),
on SQLite and PostgreSQL, through the relying-party and device faces over ASGI.

G1: wrong numbers, codes or operation bindings end a session `error` at `maxFailureCount`;
consecutive denials and failures lock the user at `lockAfterFailures` (a `user.locked`
webhook reaches a real receiver), an approval resets the count, `unlock_user` lifts the lock.
G2: creates beyond `createsPerMinute` get 429 with a `Retry-After` that says when the window
frees a place, and write nothing. G4: an unknown user, a user without devices and a locked
user get the same answer. One pending session per user: a new one cancels the older one.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from pushgate.accounts.model import RealmPolicy
from pushgate.simulator import Notification
from tests.api.helpers import REFUSED, Api, Phone
from tests.relying.support import webhook_receiver

PAYMENT = "A1*A100CZK*ICZ2730300000001165254011*R/VS123456*D20180425"
POLICY = RealmPolicy()
VOLATILE = ("id", "expiresAt", "updatedAt")  # what differs between any two sessions


async def _user_with_phone(api: Api, username: str = "alice") -> tuple[str, Phone]:
    await api.user("/", username)
    return await api.key(), await api.register("/", username)


def _wrong_fields(kind: str) -> dict[str, object]:
    if kind == "number":
        return {"pushType": "challenge"}
    if kind == "code":
        return {"pushType": "code"}
    return {"operation": {"name": "authorize_payment", "data": PAYMENT}}


async def _answer_wrong(api: Api, phone: Phone, session: dict[str, Any], kind: str) -> None:
    """One approval that must not count: the wrong number, code or operation data."""
    push = await api.push(phone)
    if kind == "number":
        number = next(n for n in push.numbers if n != int(session["challengeNumber"]))
        reply = await api.answer(phone, push, number=number)
    elif kind == "code":
        reply = await api.answer(phone, push, code=f"{(int(session['code']) + 1) % 10**6:06d}")
    else:
        reply = await api.answer(phone, push, operation_data=PAYMENT.replace("A100", "A101"))
    assert (reply.status_code, reply.json()) == (400, REFUSED)


async def _answer_right(
    api: Api, phone: Phone, session: dict[str, Any], push: Notification | None = None
) -> httpx.Response:
    push = push or await api.push(phone)
    if session["pushType"] == "challenge":
        return await api.answer(phone, push, number=int(session["challengeNumber"]))
    if session["pushType"] == "code":
        return await api.answer(phone, push, code=session["code"])
    return await api.answer(phone, push)


async def _deny(api: Api, phone: Phone, key: str) -> None:
    await api.create_session(key, phone.username)
    reply = await api.answer(phone, await api.push(phone), approve=False)
    assert reply.status_code == 200, reply.text


async def _is_locked(api: Api, key: str, username: str = "alice") -> bool:
    probe = await api.create_session(key, username)
    if probe["status"] == "error":
        assert probe["notificationCount"] == 0
        return True
    assert (await api.cancel(key, probe["id"])).status_code == 200
    return False


# G1: the session's failure count -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["number", "code", "operation"])
async def test_wrong_answers_end_the_session_error_at_max_failure_count(
    api: Api, kind: str
) -> None:
    key, phone = await _user_with_phone(api)
    await api.services.accounts.set_realm_policy("/", {"lockAfterFailures": 100})
    session = await api.create_session(key, "alice", **_wrong_fields(kind))
    push = await api.push(phone)

    for failures in range(1, POLICY.max_failure_count):
        await _answer_wrong(api, phone, session, kind)
        seen = (await api.get_session(key, session["id"])).json()
        assert (seen["status"], seen["failureCount"]) == ("sent", failures)
    await _answer_wrong(api, phone, session, kind)

    ended = (await api.get_session(key, session["id"])).json()
    assert (ended["status"], ended["failureCount"]) == ("error", POLICY.max_failure_count)
    assert ended["detail"] == "too many wrong answers"
    assert await api.pending(phone) == []  # the device is not asked any more
    late = await _answer_right(api, phone, session, push)  # the right answer is too late now
    assert (late.status_code, late.json()) == (400, REFUSED)
    assert await api.status(key, session["id"]) == "error"
    assert await api.count("sessions", status="FAILED") == 1
    assert await api.audit_events(session["id"]) == ["session.created", "session.failed"]


async def test_the_right_answer_within_the_limit_still_counts(api: Api) -> None:
    key, phone = await _user_with_phone(api)
    session = await api.create_session(key, "alice", pushType="challenge")
    for _ in range(POLICY.max_failure_count - 1):
        await _answer_wrong(api, phone, session, "number")
    assert (await _answer_right(api, phone, session)).status_code == 200
    done = (await api.get_session(key, session["id"])).json()
    assert (done["status"], done["failureCount"]) == ("accepted", POLICY.max_failure_count - 1)


# G1: the user's lock ---------------------------------------------------------------------------


async def test_consecutive_denials_and_failures_lock_the_user(api: Api) -> None:
    key, phone = await _user_with_phone(api)
    await api.services.accounts.set_realm_policy("/", {"createsPerMinute": 100})
    async with webhook_receiver(api.services, "user.locked") as hook:
        # Denials and wrong answers, mixed: all count, in a row.
        await _deny(api, phone, key)
        for kind in ("number", "code", "operation"):
            session = await api.create_session(key, "alice", **_wrong_fields(kind))
            await _answer_wrong(api, phone, session, kind)
        assert await hook.events(api.services) == []  # four: not yet
        assert not await _is_locked(api, key)
        await _deny(api, phone, key)  # the fifth

        locked = await api.create_session(key, "alice")
        assert (locked["status"], locked["notificationCount"]) == ("error", 0)
        assert await api.pending(phone) == []
        [event] = await hook.events(api.services)
        assert event["type"] == "user.locked"
        assert (event["data"]["user"], event["data"]["realm"]) == ("alice", "/")
        assert event["data"]["sessionId"] is not None  # the session whose denial locked it

        # Locked is locked: a create stays `error`, however many, and no second event.
        for _ in range(3):
            assert (await api.create_session(key, "alice"))["status"] == "error"
        assert len(await hook.events(api.services)) == 1

        await api.services.accounts.unlock_user("/", "alice")
        lifted = await api.create_session(key, "alice")
        assert (lifted["status"], lifted["notificationCount"]) == ("sent", 1)
        assert (await _answer_right(api, phone, lifted)).status_code == 200


async def test_an_approval_resets_the_count(api: Api) -> None:
    key, phone = await _user_with_phone(api)
    await api.services.accounts.set_realm_policy("/", {"createsPerMinute": 100})
    for _ in range(POLICY.lock_after_failures - 1):
        await _deny(api, phone, key)
    approved = await api.create_session(key, "alice")
    assert (await _answer_right(api, phone, approved)).status_code == 200
    for _ in range(POLICY.lock_after_failures - 1):
        await _deny(api, phone, key)
    assert not await _is_locked(api, key)  # 4, approval, 4: never five in a row
    await _deny(api, phone, key)
    assert await _is_locked(api, key)


async def test_a_canceled_or_expired_session_does_not_count(api: Api) -> None:
    key, phone = await _user_with_phone(api)
    await api.services.accounts.set_realm_policy("/", {"createsPerMinute": 100})
    for _ in range(POLICY.lock_after_failures - 1):
        await _deny(api, phone, key)
    canceled = await api.create_session(key, "alice")
    assert (await api.cancel(key, canceled["id"])).status_code == 200
    await api.create_session(key, "alice", secondsToExpire=5)
    api.advance(6)
    await api.services.sessions.expire_due()
    assert not await _is_locked(api, key)


async def test_the_lock_threshold_is_the_realms(api: Api) -> None:
    key, phone = await _user_with_phone(api)
    await api.services.accounts.set_realm_policy("/", {"lockAfterFailures": 2})
    await _deny(api, phone, key)
    assert not await _is_locked(api, key)
    await _deny(api, phone, key)
    assert await _is_locked(api, key)


# G2: creates per minute -------------------------------------------------------------------------


async def test_a_burst_beyond_creates_per_minute_is_refused_and_writes_nothing(api: Api) -> None:
    key, phone = await _user_with_phone(api)
    limit = POLICY.creates_per_minute
    first = await api.create_session(key, "alice")
    api.advance(10)
    for _ in range(limit - 1):
        await api.create_session(key, "alice")

    before = await api.snapshot()
    for _ in range(5):
        refused = await api.create_session_response(key, {"user": "alice"})
        assert refused.status_code == 429
        assert refused.json()["code"] == "rateLimited"
        assert set(refused.json()) == {"code", "message"}
        # The first create leaves the window 60 s after it was made, 50 s from now.
        assert refused.headers["retry-after"] == "50"
    assert await api.snapshot() == before  # no session, notification, audit or outbox row
    assert await api.count("sessions") == limit
    assert await api.count("notifications") == limit

    api.advance(49)
    assert (await api.create_session_response(key, {"user": "alice"})).headers["retry-after"] == "1"
    api.advance(1)  # the first create is a minute old: one place free, and only one
    admitted = await api.create_session(key, "alice")
    assert admitted["id"] != first["id"] and admitted["status"] == "sent"
    again = await api.create_session_response(key, {"user": "alice"})
    assert (again.status_code, again.headers["retry-after"]) == (429, "10")
    api.advance(10)
    for _ in range(limit - 1):  # the other nine left the window together
        await api.create_session(key, "alice")
    assert (await api.create_session_response(key, {"user": "alice"})).status_code == 429
    assert len(await api.pending(phone)) == 1  # and one of all of them waits on the phone


async def test_the_limit_is_per_user_and_per_realm_setting(api: Api) -> None:
    key, _ = await _user_with_phone(api)
    await _user_with_phone(api, "bob")
    await api.services.accounts.set_realm_policy("/", {"createsPerMinute": 2})
    for _ in range(2):
        await api.create_session(key, "alice")
    refused = await api.create_session_response(key, {"user": "alice"})
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "60")
    assert (await api.create_session(key, "bob"))["status"] == "sent"  # bob has his own


# G4: who is who is not told --------------------------------------------------------------------


def _shape(response: httpx.Response) -> tuple[int, dict[str, object], list[str], int]:
    """Everything a caller sees except what differs between any two sessions."""
    body = response.json()
    fixed = {k: v for k, v in body.items() if k not in VOLATILE}
    return response.status_code, fixed, sorted(response.headers), len(response.content)


async def _three_unknowable_users(api: Api) -> str:
    """`ghost` (no such user), `bare` (no device) and `gone` (locked); the API key."""
    await api.user("/", "bare")
    key, gone = await _user_with_phone(api, "gone")
    for _ in range(POLICY.lock_after_failures):
        await _deny(api, gone, key)
    api.advance(61)  # the denials' creates out of the rate window
    return key


async def test_unknown_deviceless_and_locked_users_answer_alike(api: Api) -> None:
    key = await _three_unknowable_users(api)
    created = {
        user: await api.create_session_response(key, {"user": user, "pushType": "challenge"})
        for user in ("ghost", "bare", "gone")
    }
    shapes = {user: _shape(response) for user, response in created.items()}
    assert shapes["ghost"] == shapes["bare"] == shapes["gone"], shapes
    status, body, _, _ = shapes["ghost"]
    assert (status, body["status"], body["notificationCount"]) == (201, "error", 0)
    assert "challengeNumber" not in body  # nothing to show: no device will ask
    read = {user: _shape(await api.get_session(key, r.json()["id"])) for user, r in created.items()}
    assert read["ghost"] == read["bare"] == read["gone"], read


async def test_the_rate_limit_applies_alike_to_all_three(api: Api) -> None:
    key = await _three_unknowable_users(api)
    refusals = {}
    for user in ("ghost", "bare", "gone"):
        for _ in range(POLICY.creates_per_minute):
            assert (await api.create_session(key, user))["status"] == "error"
        refused = await api.create_session_response(key, {"user": user})
        refusals[user] = (refused.status_code, refused.json(), refused.headers["retry-after"])
    assert refusals["ghost"] == refusals["bare"] == refusals["gone"], refusals
    assert refusals["ghost"][0] == 429


# One pending session per user -------------------------------------------------------------------


async def test_a_new_session_cancels_the_pending_one_and_wakes_its_waiter(api: Api) -> None:
    key, phone = await _user_with_phone(api)
    older = await api.create_session(key, "alice")
    [offered] = await api.pending(phone)
    woken: list[httpx.Response] = []

    async def wait() -> None:
        woken.append(
            await api.client.get(
                f"/v1/push/sessions/{older['id']}?wait=30", headers={"X-API-Key": key}
            )
        )

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait)
            await anyio.sleep(0.2)  # the waiter is in
            assert woken == []
            newer = await api.create_session(key, "alice")

    [waited] = woken
    assert waited.status_code == 200
    assert waited.json()["status"] == "canceled"
    assert waited.json()["detail"] == "superseded by a newer session"
    assert (await api.get_session(key, older["id"])).json() == waited.json()
    [pending] = await api.pending(phone)  # the older push is gone from the device's list
    assert pending.message_id != offered.message_id
    assert (await api.answer(phone, offered)).status_code == 400  # and cannot be answered
    assert (await _answer_right(api, phone, newer)).status_code == 200
    assert await api.terminal_events(older["id"]) == ["session.canceled"]


async def test_the_realm_may_allow_several_pending(api: Api) -> None:
    key, phone = await _user_with_phone(api)
    pending = await api.create_session(key, "alice")
    await api.services.accounts.set_realm_policy("/", {"onePendingPerUser": False})
    both = await api.create_session(key, "alice")
    assert await api.status(key, pending["id"]) == "sent"  # the realm allows two
    assert len(await api.pending(phone)) == 2
    assert both["status"] == "sent"
