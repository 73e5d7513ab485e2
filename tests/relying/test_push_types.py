"""Push types on `/v1` (issue 7): the number or code the person must match, the context and
the operation a push carries, and what a wrong answer costs."""

from __future__ import annotations

import json

import jwt

from pushgate.protocol.device_messages import operation_hash
from tests.api.helpers import Api, Phone

PAYMENT = "A1*A100CZK*ICZ2730300000001165254011*R/VS123456*D20180425"


async def _alice(api: Api) -> tuple[str, Phone]:
    await api.user("/", "alice")
    return await api.key(), await api.register("/", "alice")


async def test_challenge_shows_one_number_that_every_device_offers(api: Api) -> None:
    key, phone = await _alice(api)
    other = await api.register("/", "alice")
    session = await api.create_session(key, "alice", pushType="challenge")

    assert session["pushType"] == "challenge" and "code" not in session
    number = int(session["challengeNumber"])
    for device in (phone, other):
        push = await api.push(device)
        assert push.push_type.value == "challenge"
        assert number in push.numbers and len(set(push.numbers)) == 3
    assert (await api.answer(phone, await api.push(phone), number=number)).status_code == 200
    done = await api.get_session(key, session["id"])
    assert done.json()["status"] == "accepted"
    assert "challengeNumber" not in done.json()  # only while the login page needs it


async def test_a_wrong_pick_counts_and_the_limit_ends_the_session_error(api: Api) -> None:
    key, phone = await _alice(api)
    await api.services.accounts.set_realm_policy("/", {"maxFailureCount": 2})
    session = await api.create_session(key, "alice", pushType="challenge")
    push = await api.push(phone)
    wrong = next(n for n in push.numbers if n != int(session["challengeNumber"]))

    assert (await api.answer(phone, push, number=wrong)).status_code == 400
    first = (await api.get_session(key, session["id"])).json()
    assert (first["status"], first["failureCount"]) == ("sent", 1)
    assert (await api.answer(phone, push, number=wrong)).status_code == 400
    second = (await api.get_session(key, session["id"])).json()
    assert (second["status"], second["failureCount"]) == ("error", 2)
    right = int(session["challengeNumber"])
    assert (await api.answer(phone, push, number=right)).status_code == 400  # too late


async def test_a_code_must_be_typed_exactly(api: Api) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice", pushType="code")
    code = session["code"]
    assert len(code) == 6 and code.isdigit() and "challengeNumber" not in session
    push = await api.push(phone)
    assert push.push_type.value == "code" and not push.numbers  # the device must not show it
    assert "n" not in push.claims and code not in push.claims.values()  # the push tells nothing

    near = f"{(int(code) + 1) % 1_000_000:06d}"
    assert (await api.answer(phone, push, code=near)).status_code == 400
    assert (await api.answer(phone, push, code=code[1:])).status_code == 400  # not 6 digits
    assert (await api.answer(phone, push)).status_code == 400  # nothing typed
    assert (await api.get_session(key, session["id"])).json()["failureCount"] == 3
    assert (await api.answer(phone, push, code=code)).status_code == 200
    assert await api.status(key, session["id"]) == "accepted"


async def test_the_realm_default_push_type_applies_when_absent(api: Api) -> None:
    key, _phone = await _alice(api)
    await api.services.accounts.set_realm_policy("/", {"defaultPushType": "challenge"})
    session = await api.create_session(key, "alice")
    assert session["pushType"] == "challenge" and "challengeNumber" in session
    explicit = await api.create_session(key, "alice", pushType="default")
    assert explicit["pushType"] == "default" and "challengeNumber" not in explicit


async def test_context_travels_in_the_push_and_with_the_session(api: Api) -> None:
    key, phone = await _alice(api)
    context = {
        "remoteIp": "192.0.2.1",
        "userAgent": "Firefox/140",
        "location": {"latitude": 48.85, "longitude": 2.35},
    }
    session = await api.create_session(key, "alice", context=context)
    assert session["context"] == context
    push = await api.push(phone)
    assert push.context == context
    assert json.loads(push.claims["x"]) == context


async def test_an_operation_approval_must_bind_its_data(api: Api) -> None:
    key, phone = await _alice(api)
    operation = {"name": "authorize_payment", "data": PAYMENT}
    session = await api.create_session(key, "alice", operation=operation)
    assert session["operation"] == operation and session["operationId"] == session["id"]
    push = await api.push(phone)
    assert push.operation == {"id": session["id"], **operation}

    altered = PAYMENT.replace("A100CZK", "A900CZK")  # J2: the device signed another amount
    assert (await api.answer(phone, push, operation_data=altered)).status_code == 400
    assert (await api.get_session(key, session["id"])).json()["failureCount"] == 1
    body = api.answer_body(phone, push)
    signed = jwt.decode(body["jwt"], options={"verify_signature": False})
    assert signed["operationHash"] == operation_hash(PAYMENT)  # the simulator binds what it showed
    assert (await api.post(phone.authenticate_url, body)).status_code == 200
    assert await api.status(key, session["id"]) == "accepted"


async def test_a_denial_says_why(api: Api) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice", operation={"name": "login"})
    push = await api.push(phone)
    reply = await api.answer(phone, push, approve=False, deny_reason="UNEXPECTED_OPERATION")
    assert reply.status_code == 200
    done = (await api.get_session(key, session["id"])).json()
    assert (done["status"], done["denyReason"]) == ("rejected", "UNEXPECTED_OPERATION")
