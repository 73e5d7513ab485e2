"""Operations with dynamic linking and deny reasons (security.md §5, §9 J1-J3; issue 7
"Operations"), on SQLite and PostgreSQL.

An approval counts only when it carries the hash of exactly the operation data the server
stored (J1: data changed after the push went out; J2: the device signed other data; an
approval that binds nothing). `UNEXPECTED_OPERATION` ("this wasn't me") shows on the session,
is audited, raises `user.fraud_reported` at a real receiver and counts toward the lock; J3:
with `lockAfterFailures` 5, the sixth failure in a row meets a locked user.
"""

from __future__ import annotations

import json
from typing import Any

import jwt as pyjwt
import pytest
from sqlalchemy import select, update

from pushgate.protocol import jwt
from pushgate.protocol.device_messages import operation_hash
from pushgate.store import schema
from tests.api.helpers import REFUSED, Api, Phone, connect
from tests.relying.support import webhook_receiver

PAYMENT = "A1*A100CZK*ICZ2730300000001165254011*R/VS123456*D20180425"
OPERATION = {"name": "authorize_payment", "data": PAYMENT}


async def _alice(api: Api) -> tuple[str, Phone]:
    await api.user("/", "alice")
    return await api.key(), await api.register("/", "alice")


async def _user_failures(api: Api, username: str = "alice") -> tuple[int, bool]:
    """The user's consecutive failures and whether the user is locked, as stored."""
    u = schema.users.c
    async with connect(api.services) as conn:
        row = (
            await conn.execute(select(u.failure_count, u.locked_ms).where(u.username == username))
        ).one()
    return int(row.failure_count), row.locked_ms is not None


async def _audit(api: Api, subject: str) -> list[tuple[str, dict[str, Any]]]:
    a = schema.audit.c
    async with connect(api.services) as conn:
        rows = await conn.execute(
            select(a.event, a.data).where(a.subject == subject).order_by(a.id)
        )
        return [(event, json.loads(data)) for event, data in rows]


async def _refused_and_counted(api: Api, key: str, session_id: str, reply: Any) -> None:
    assert (reply.status_code, reply.json()) == (400, REFUSED)
    seen = (await api.get_session(key, session_id)).json()
    assert (seen["status"], seen["failureCount"]) == ("sent", 1)
    assert await _user_failures(api) == (1, False)


# J2 and friends: the device's binding ---------------------------------------------------------


async def test_j2_an_approval_of_other_data_is_refused_and_counted(api: Api) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice", operation=OPERATION)
    push = await api.push(phone)
    assert push.operation == {"id": session["id"], **OPERATION}  # what the device shows

    for altered in (
        PAYMENT.replace("A100CZK", "A100EUR"),  # the currency
        PAYMENT.replace("ICZ27303", "ICZ27304"),  # the payee
        PAYMENT + "*Tnote",  # something added
        PAYMENT[:-1],  # something taken away
    ):
        reply = await api.answer(phone, push, operation_data=altered)
        assert (reply.status_code, reply.json()) == (400, REFUSED)
    seen = (await api.get_session(key, session["id"])).json()
    assert (seen["status"], seen["failureCount"]) == ("sent", 4)
    assert await _user_failures(api) == (4, False)

    assert (await api.answer(phone, push)).status_code == 200  # the exact data: it counts
    assert await api.status(key, session["id"]) == "accepted"
    assert await _user_failures(api) == (0, False)  # and the approval resets the count


async def test_an_approval_that_binds_nothing_is_refused_and_counted(api: Api) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice", operation=OPERATION)
    push = await api.push(phone)
    body = api.answer_body(phone, push)
    claims = pyjwt.decode(body["jwt"], options={"verify_signature": False})
    assert claims.pop("operationHash") == operation_hash(PAYMENT)
    # A validly signed approval, from an app that does not know about operations.
    unbound = {"messageId": body["messageId"], "jwt": jwt.sign(claims, phone.mechanism.secret)}
    reply = await api.post(phone.authenticate_url, unbound)
    await _refused_and_counted(api, key, session["id"], reply)


async def test_a_hash_of_the_name_or_of_nothing_does_not_bind(api: Api) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice", operation=OPERATION)
    push = await api.push(phone)
    reply = await api.answer(phone, push, operation_data="authorize_payment")
    await _refused_and_counted(api, key, session["id"], reply)


async def test_j1_data_changed_after_the_push_invalidates_the_approval(api: Api) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice", operation=OPERATION)
    push = await api.push(phone)  # the device shows (and will sign) 100 CZK
    changed = PAYMENT.replace("A100CZK", "A900CZK")
    async with connect(api.services) as conn:
        await conn.execute(
            update(schema.sessions)
            .where(schema.sessions.c.id == session["id"])
            .values(operation_data=changed)
        )
        await conn.commit()

    reply = await api.answer(phone, push)  # bound to what it showed, not to what is stored
    await _refused_and_counted(api, key, session["id"], reply)
    shown = (await api.get_session(key, session["id"])).json()
    assert shown["operation"]["data"] == changed


async def test_a_session_without_data_needs_no_binding(api: Api) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice", operation={"name": "login"})
    push = await api.push(phone)
    assert push.operation == {"id": session["id"], "name": "login"}
    assert (await api.answer(phone, push)).status_code == 200
    assert await api.status(key, session["id"]) == "accepted"


async def test_a_denial_needs_no_binding(api: Api) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice", operation=OPERATION)
    reply = await api.answer(
        phone, await api.push(phone), approve=False, operation_data="anything else"
    )
    assert reply.status_code == 200
    assert await api.status(key, session["id"]) == "rejected"


# Deny reasons ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["UNKNOWN", "INCORRECT_DATA", "UNEXPECTED_OPERATION"])
async def test_a_deny_reason_shows_on_the_session_and_counts(api: Api, reason: str) -> None:
    key, phone = await _alice(api)
    async with webhook_receiver(api.services) as hook:
        session = await api.create_session(key, "alice", operation=OPERATION)
        reply = await api.answer(phone, await api.push(phone), approve=False, deny_reason=reason)
        assert reply.status_code == 200
        shown = (await api.get_session(key, session["id"])).json()
        assert (shown["status"], shown["denyReason"]) == ("rejected", reason)
        assert await _user_failures(api) == (1, False)

        answered = [
            data for event, data in await _audit(api, session["id"]) if event != "session.created"
        ]
        assert len(answered) == 1 and answered[0]["denyReason"] == reason

        events = [e for e in await hook.events(api.services) if e["type"] != "device.registered"]
    assert events[0] == {"type": "session.rejected", "data": shown}
    reports = [e for e in events if e["type"] == "user.fraud_reported"]
    if reason == "UNEXPECTED_OPERATION":
        assert [r["data"] for r in reports] == [
            {"user": "alice", "realm": "/", "sessionId": session["id"]}
        ]
    else:
        assert reports == []
    assert len(events) == 1 + len(reports)


async def test_an_unknown_deny_reason_is_refused_and_changes_nothing(api: Api) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice", operation=OPERATION)
    push = await api.push(phone)
    before = await api.snapshot()
    reply = await api.answer(phone, push, approve=False, deny_reason="NOT_ME")
    assert (reply.status_code, reply.json()) == (400, REFUSED)
    assert await api.snapshot() == before
    assert await api.status(key, session["id"]) == "sent"


async def test_a_denial_without_reason_shows_none(api: Api) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice")
    assert (await api.answer(phone, await api.push(phone), approve=False)).status_code == 200
    shown = (await api.get_session(key, session["id"])).json()
    assert (shown["status"], shown["denyReason"]) == ("rejected", None)


# J3: the sixth failure in a row ----------------------------------------------------------------


async def test_j3_the_sixth_consecutive_failure_meets_a_locked_user(api: Api) -> None:
    key, phone = await _alice(api)
    policy = await api.services.accounts.set_realm_policy("/", {"createsPerMinute": 100})
    assert policy.lock_after_failures == 5  # the default, PSD2 RTS art. 4(3)(b)
    async with webhook_receiver(api.services, "user.locked", "user.fraud_reported") as hook:
        # Five failures on operations, each kind: wrong data, "not me", plain denials.
        for attempt in range(5):
            await api.create_session(key, "alice", operation=OPERATION)
            push = await api.push(phone)
            if attempt % 2:
                reply = await api.answer(phone, push, operation_data=PAYMENT + "0")
                assert reply.status_code == 400
            else:
                reason = "UNEXPECTED_OPERATION" if attempt == 0 else "INCORRECT_DATA"
                reply = await api.answer(phone, push, approve=False, deny_reason=reason)
                assert reply.status_code == 200
            assert await _user_failures(api) == (attempt + 1, attempt == 4)

        # The user was told before any sixth attempt: a fraud report, then the lock.
        types = [e["type"] for e in await hook.events(api.services)]
        assert types == ["user.fraud_reported", "user.locked"]

        sixth = await api.create_session(key, "alice", operation=OPERATION)
        assert (sixth["status"], sixth["notificationCount"]) == ("error", 0)
        assert await api.pending(phone) == []  # nothing reaches the phone to approve
        assert await _user_failures(api) == (5, True)

    locks = [d for e, d in await _audit(api, await _user_id(api)) if e == "user.locked"]
    assert [d["failures"] for d in locks] == [5]


async def _user_id(api: Api, username: str = "alice") -> str:
    u = schema.users.c
    async with connect(api.services) as conn:
        found: str = (await conn.execute(select(u.id).where(u.username == username))).scalar_one()
    return found
