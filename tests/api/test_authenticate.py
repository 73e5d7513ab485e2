"""The seed's journey through AM's REST API (`/json/.../authenticate`, spec forgerock-push.md
§8; issue 9), with the simulator as the phone: registration by QR, the recovery codes the SDKs
parse, a push with number matching, a recovery-code login, expiry → resend, retry limit →
reject, opt-out, skip, denial, and the login session it ends with."""

from __future__ import annotations

import httpx
import pytest

from pushgate.services import Services
from pushgate.settings import Settings
from tests.api.authenticate.flow import (
    FAILURE,
    SDK_CODES,
    SESSIONS,
    Rest,
    Step,
    fill,
    hidden,
    make_user,
    output,
    types,
)
from tests.api.helpers import Api


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A held Push Wait returns almost at once: these tests answer the phone between steps.
    return settings.model_copy(update={"journey_hold_seconds": 0.02})


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


@pytest.fixture
def rest(api: Api) -> Rest:
    return Rest(api)


@pytest.fixture
async def alice(services: Services) -> str:
    await make_user(services, "alice")
    return "alice"


async def approve(api: Api, rest: Rest, wait: Step, phone: object) -> Step:
    """The phone picks the login page's number; the next poll after the wait ends succeeds."""
    push = await api.push(phone)  # type: ignore[arg-type]
    number = int(hidden(wait, "pushChallengeNumber"))
    assert number in push.numbers
    assert (await api.answer(phone, push, number=number)).status_code == 200  # type: ignore[arg-type]
    api.advance(5)
    return await rest.submit(wait)


async def test_first_step_is_the_credentials_page(rest: Rest) -> None:
    page = await rest.begin()
    assert set(page) == {"authId", "callbacks", "header"}
    assert page["header"] == "Sign in"
    assert page["callbacks"] == [
        {
            "type": "NameCallback",
            "output": [{"name": "prompt", "value": "User Name"}],
            "input": [{"name": "IDToken1", "value": ""}],
        },
        {
            "type": "PasswordCallback",
            "output": [{"name": "prompt", "value": "Password"}],
            "input": [{"name": "IDToken2", "value": ""}],
        },
    ]
    again = await rest.ok({})  # `{}` is an empty first body too
    assert again["callbacks"] == page["callbacks"] and again["authId"] != page["authId"]


async def test_registration_recovery_codes_push_login_and_session(
    api: Api, rest: Rest, alice: str, services: Services
) -> None:
    codes_step, phone = await rest.register_by_qr(alice)
    assert types(codes_step) == ["TextOutputCallback"]
    script = output(codes_step, 0, "message")
    assert output(codes_step, 0, "messageType") == "4"
    assert "Your Recovery Codes" in script
    assert len(SDK_CODES.findall(script)) == 10

    wait = await rest.submit(codes_step)
    assert types(wait) == ["PollingWaitCallback", "HiddenValueCallback", "ConfirmationCallback"]
    # The first showing answers at once (the page must show the number); the client comes
    # straight back and the server holds that submission until the push ends.
    assert output(wait, 0, "waitTime") == "0"
    assert hidden(wait, "pushChallengeNumber") in output(wait, 0, "message")
    assert wait["callbacks"][2]["input"] == [{"name": "IDToken3", "value": 100}]

    done = await approve(api, rest, wait, phone)
    assert set(done) == {"tokenId", "successUrl", "realm"} and done["realm"] == "/"
    token = done["tokenId"]
    assert rest.client.cookies.get("iPlanetDirectoryPro") == token

    check = await rest.client.post(
        f"{SESSIONS}?_action=validate", headers={"iPlanetDirectoryPro": token}
    )
    assert check.json() == {"valid": True, "uid": "alice", "realm": "/"}
    async with services.store.autocommit() as db:
        user = await db.accounts.get_user("/", "alice")
    assert user is not None and "login.opened" in await api.audit_events(user.id)


async def test_success_sets_the_sso_cookie(rest: Rest, services: Services) -> None:
    await make_user(services, "olga")
    options = await rest.to_options_or_wait("olga")
    response = await rest.post(fill(options, 2))  # Skip
    assert response.status_code == 200, response.text
    token = response.json()["tokenId"]
    assert response.headers["set-cookie"] == (
        f"iPlanetDirectoryPro={token}; HttpOnly; SameSite=Lax; Path=/"
    )


async def test_a_recovery_code_works_once(api: Api, rest: Rest, alice: str) -> None:
    codes_step, _ = await rest.register_by_qr(alice)
    code = SDK_CODES.findall(output(codes_step, 0, "message"))[0]
    await rest.submit(codes_step)  # on to the first push, abandoned
    for attempt in range(2):
        wait = await rest.to_options_or_wait(alice)
        collector = await rest.submit(wait, None, 0)  # "Lost phone? Use a recovery code"
        assert types(collector) == ["NameCallback"]
        assert output(collector, 0, "prompt") == "Recovery Code"
        result = await rest.submit(collector, code)
        if attempt == 0:
            assert "tokenId" in result
        else:
            assert types(result) == ["NameCallback"]  # False → Retry Limit → Retry


async def test_retry_limit_rejects(api: Api, rest: Rest, alice: str) -> None:
    codes_step, _ = await rest.register_by_qr(alice)
    await rest.submit(codes_step)
    wait = await rest.to_options_or_wait(alice)
    step = await rest.submit(wait, None, 0)
    for _ in range(2):
        step = await rest.submit(step, "WRONGCODE0")
        assert types(step) == ["NameCallback"]
    last = await rest.post(fill(step, "WRONGCODE0"))
    assert last.status_code == 401
    assert last.json() == FAILURE


async def test_expiry_sends_a_new_push(api: Api, rest: Rest, alice: str) -> None:
    codes_step, phone = await rest.register_by_qr(alice)
    wait = await rest.submit(codes_step)
    first = await api.push(phone)
    api.advance(121)  # past the Push Sender's 120 s message timeout
    resent = await rest.submit(wait)
    assert types(resent) == types(wait)
    assert resent["authId"] != wait["authId"]
    second = await api.push(phone)  # the first one expired: only the new one is pending
    assert second.message_id != first.message_id
    done = await approve(api, rest, resent, phone)
    assert "tokenId" in done


async def test_denial_fails_without_an_auth_id(api: Api, rest: Rest, alice: str) -> None:
    codes_step, phone = await rest.register_by_qr(alice)
    wait = await rest.submit(codes_step)
    push = await api.push(phone)
    assert (await api.answer(phone, push, approve=False)).status_code == 200
    api.advance(5)
    response = await rest.post(wait)
    assert response.status_code == 401
    assert response.json() == FAILURE
    assert "iPlanetDirectoryPro" not in response.headers.get("set-cookie", "")


async def test_opt_out_then_skipped(rest: Rest, services: Services, api: Api) -> None:
    await make_user(services, "carol")
    options = await rest.to_options_or_wait("carol")
    assert len(output(options, 1, "options")) == 4  # Register, Get App, Skip, Opt-out
    done = await rest.submit(options, 3)  # Opt-out
    assert "tokenId" in done
    assert await api.count("mfa_opt_outs", method="push") == 1
    again = await rest.to_options_or_wait("carol")  # Push Sender: Skipped → Success
    assert "tokenId" in again


async def test_skip(rest: Rest, services: Services, api: Api) -> None:
    await make_user(services, "sam")
    options = await rest.to_options_or_wait("sam")
    done = await rest.submit(options, 2)  # Skip
    assert "tokenId" in done
    assert await api.count("mfa_opt_outs") == 0
    assert types(await rest.to_options_or_wait("sam")) == types(options)  # asked again


async def test_wrong_password_fails(rest: Rest, alice: str) -> None:
    page = await rest.begin()
    response = await rest.post(fill(page, alice, "nope"))
    assert response.status_code == 401 and response.json() == FAILURE
    assert "authId" not in response.json()


async def test_password_guessing_meets_the_lock(rest: Rest, services: Services) -> None:
    await make_user(services, "dave")
    await services.accounts.set_realm_policy("/", {"lockAfterFailures": 3})
    for _ in range(3):
        assert await rest.to_options_or_wait("dave", "guess") == FAILURE
    assert await rest.to_options_or_wait("dave", "pw") == FAILURE  # right, but locked
    async with services.store.autocommit() as db:
        user = await db.accounts.get_user("/", "dave")
    assert user is not None and user.locked
