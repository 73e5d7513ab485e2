"""Replayed device messages at the HTTP level (security.md §9 C1-C6).

A replay gets the same generic CREST 400 as a forgery, and changes nothing: the terminal state,
the audit trail and the device row stay as the first message left them. Replay protection
lives in the database, so it survives a restart and holds across server instances (C6).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from pushgate.api.app import create_app
from pushgate.clock import Clock
from pushgate.protocol import jwt
from pushgate.services import Services
from pushgate.settings import Settings
from pushgate.simulator import new_device, new_mechanism_uid, refresh_body, registration_body
from pushgate.wiring import build_services
from tests.api.helpers import REFUSED, Api, Phone


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


async def _alice(api: Api) -> tuple[str, Phone]:
    await api.user("/", "alice")
    return await api.key(), await api.register("/", "alice")


async def _refused(api: Api, url: str, body: dict[str, str]) -> None:
    response = await api.post(url, body)
    assert (response.status_code, response.json()) == (400, REFUSED), body


# C1 ------------------------------------------------------------------------------------------


async def test_c1_resending_an_accepted_approve_is_refused(api: Api) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice")
    push = await api.push(phone)
    body = api.answer_body(phone, push)
    assert (await api.post(phone.authenticate_url, body)).status_code == 200
    api.advance(1)
    before = await api.snapshot()

    for _ in range(3):
        await _refused(api, phone.authenticate_url, body)

    assert await api.snapshot() == before
    assert await api.status(key, session["id"]) == "accepted"
    assert await api.terminal_events(session["id"]) == ["session.answered"]


# C2 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("end", ["denied", "canceled", "expired"])
async def test_c2_answers_after_the_end_are_refused(api: Api, end: str) -> None:
    key, phone = await _alice(api)
    session = await api.create_session(key, "alice", secondsToExpire=60)
    push = await api.push(phone)
    approve = api.answer_body(phone, push)
    deny = api.answer_body(phone, push, approve=False)
    if end == "denied":
        assert (await api.post(phone.authenticate_url, deny)).status_code == 200
        expected = "rejected"
    elif end == "canceled":
        assert (await api.cancel(key, session["id"])).status_code == 200
        expected = "canceled"
    else:
        api.advance(60)
        expected = "expired"
    assert await api.status(key, session["id"]) == expected
    before = await api.snapshot()

    await _refused(api, phone.authenticate_url, approve)
    await _refused(api, phone.authenticate_url, deny)

    assert await api.snapshot() == before
    assert await api.status(key, session["id"]) == expected
    assert len(await api.terminal_events(session["id"])) == 1


# C3 ------------------------------------------------------------------------------------------


async def test_c3_an_old_response_does_not_answer_a_newer_challenge(api: Api) -> None:
    key, phone = await _alice(api)
    await api.allow_many_sessions()
    old = await api.create_session(key, "alice")
    old_push = await api.push(phone)
    old_body = api.answer_body(phone, old_push)
    assert (await api.post(phone.authenticate_url, old_body)).status_code == 200
    new = await api.create_session(key, "alice")
    newer = await api.create_session(key, "alice")
    new_push, newer_push = sorted(await api.pending(phone), key=lambda p: p.message_id)
    before = await api.snapshot()

    # The captured answer, pointed at the newer messages.
    for target in (new_push, newer_push):
        for token in (old_body["jwt"], api.answer_body(phone, old_push, approve=False)["jwt"]):
            await _refused(
                api, phone.authenticate_url, {"messageId": target.message_id, "jwt": token}
            )
    # Two open pushes: the answer to one does not answer the other.
    crossed = {"messageId": newer_push.message_id, "jwt": api.answer_body(phone, new_push)["jwt"]}
    await _refused(api, phone.authenticate_url, crossed)

    assert await api.snapshot() == before
    assert await api.status(key, old["id"]) == "accepted"
    assert (await api.answer(phone, new_push)).status_code == 200
    assert (await api.answer(phone, newer_push, approve=False)).status_code == 200
    statuses = {await api.status(key, new["id"]), await api.status(key, newer["id"])}
    assert statuses == {"accepted", "rejected"}


# C4 ------------------------------------------------------------------------------------------


async def test_c4_a_used_registration_cannot_register_again(api: Api) -> None:
    await api.user("/", "alice")
    uri = await api.start("/", "alice")
    body = registration_body(uri, new_mechanism_uid(), new_device())
    assert (await api.post(uri.register_url, body)).status_code == 200
    api.advance(1)
    before = await api.snapshot()

    # The same message again, and the same QR code scanned by another phone.
    await _refused(api, uri.register_url, body)
    for _ in range(2):
        other = registration_body(uri, new_mechanism_uid(), new_device())
        await _refused(api, uri.register_url, other)
    # A new QR code does not revive the old one.
    await api.start("/", "alice")
    after_new_qr = await api.snapshot()
    await _refused(api, uri.register_url, body)

    assert (await api.snapshot())["devices"] == before["devices"]
    assert await api.snapshot() == after_new_qr
    assert await api.count("devices") == 1


async def test_c4_a_mechanism_uid_registers_once(api: Api) -> None:
    await api.user("/", "alice")
    phone = await api.register("/", "alice")
    uri = await api.start("/", "alice")
    body = registration_body(uri, phone.mechanism.mechanism_uid, new_device())
    before = await api.snapshot()

    await _refused(api, uri.register_url, body)

    assert await api.snapshot() == before


# C5 ------------------------------------------------------------------------------------------


async def test_c5_an_older_refresh_cannot_roll_back_the_push_token(api: Api) -> None:
    _key, phone = await _alice(api)
    first = refresh_body(phone.mechanism, new_device("first"))
    second = refresh_body(phone.mechanism, new_device("second"))
    assert (await api.post(phone.refresh_url, first)).status_code == 200
    assert (await api.post(phone.refresh_url, second)).status_code == 200
    newest = (await api.device_row(phone.mechanism.mechanism_uid))["push_token"]
    before = await api.snapshot()

    await _refused(api, phone.refresh_url, first)
    # The latest refresh sent again (its answer was lost) is idempotent: 200, nothing changes.
    assert (await api.post(phone.refresh_url, second)).status_code == 200
    # The registration message carries a push token too; it is no refresh.
    legacy = {"mechanismUid": phone.mechanism.mechanism_uid, "username": "alice"}
    await _refused(api, phone.refresh_url, {**legacy, "jwt": phone.registration["jwt"]})

    assert await api.snapshot() == before
    row = await api.device_row(phone.mechanism.mechanism_uid)
    assert (row["push_token"], row["name"]) == (newest, "second")


# C6 ------------------------------------------------------------------------------------------


@asynccontextmanager
async def _instance(settings: Settings, clock: Clock) -> AsyncIterator[Api]:
    """Another pushgate on the same database: fresh services, fresh app, no shared memory."""
    built = build_services(settings, clock)
    app = create_app(built, close_store=False)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Api(http, built)
    finally:
        await built.store.aclose()


async def test_c6_replays_fail_after_a_restart_and_on_another_instance(
    api: Api, settings: Settings
) -> None:
    clock = api.services.clock
    key, phone = await _alice(api)
    accepted = await api.create_session(key, "alice")
    approve = api.answer_body(phone, await api.push(phone))
    assert (await api.post(phone.authenticate_url, approve)).status_code == 200
    rejected = await api.create_session(key, "alice")
    deny = api.answer_body(phone, await api.push(phone), approve=False)
    assert (await api.post(phone.authenticate_url, deny)).status_code == 200
    canceled = await api.create_session(key, "alice")
    late = api.answer_body(phone, await api.push(phone))
    assert (await api.cancel(key, canceled["id"])).status_code == 200
    refresh = refresh_body(phone.mechanism, new_device("refreshed"))
    assert (await api.post(phone.refresh_url, refresh)).status_code == 200
    newer = refresh_body(phone.mechanism, new_device("newer"))
    assert (await api.post(phone.refresh_url, newer)).status_code == 200
    register = phone.registration
    captured = [
        (phone.mechanism.register_url, register),
        (phone.authenticate_url, approve),
        (phone.authenticate_url, deny),
        (phone.authenticate_url, late),
        (phone.refresh_url, refresh),
    ]
    before = await api.snapshot()
    # "Restart": the first instance lets go of the database.
    await api.services.store.aclose()

    async with _instance(settings, clock) as restarted, _instance(settings, clock) as second:
        for server in (restarted, second, restarted):
            for url, body in captured:
                await _refused(server, url, body)
        assert await restarted.snapshot() == before
        for session, status in ((accepted, "accepted"), (rejected, "rejected")):
            assert await second.status(key, session["id"]) == status
        assert await restarted.status(key, canceled["id"]) == "canceled"
        # Both instances still serve honest traffic, each seeing the other's writes.
        fresh = await restarted.create_session(key, "alice")
        fresh_approve = second.answer_body(phone, await second.push(phone))
        assert (await second.post(phone.authenticate_url, fresh_approve)).status_code == 200
        assert await restarted.status(key, fresh["id"]) == "accepted"
        await _refused(restarted, phone.authenticate_url, fresh_approve)


async def test_c6_superseded_refresh_tokens_stay_refused_across_instances(
    api: Api, settings: Settings
) -> None:
    _key, phone = await _alice(api)
    refresh = refresh_body(phone.mechanism, new_device("refreshed"))
    token = refresh["jwt"]
    assert jwt.verify(token, phone.mechanism.secret)["deviceName"] == "refreshed"
    newer = refresh_body(phone.mechanism, new_device("newer"))

    async with _instance(settings, api.services.clock) as second:
        assert (await second.post(phone.refresh_url, refresh)).status_code == 200
        assert (await api.post(phone.refresh_url, newer)).status_code == 200
        before = await api.snapshot()
        await _refused(api, phone.refresh_url, refresh)
        await _refused(second, phone.refresh_url, refresh)
        for server in (api, second):  # the latest one again is a harmless no-op
            assert (await server.post(phone.refresh_url, newer)).status_code == 200
        assert await api.snapshot() == before
