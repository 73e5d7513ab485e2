"""The login and account pages over ASGI (issue 9): every screen of the seed 002 journey as a
form, the simulator's protocol as the phone, and the attacks a page must refuse (CSRF, a
replayed or tampered step, another browser's step, an offsite `goto`)."""

from __future__ import annotations

import re

import httpx
import pytest

from pushgate.devices.model import DeviceStatus
from pushgate.protocol import qr
from pushgate.services import Services
from pushgate.simulator import mechanism_from_uri, new_device, new_mechanism_uid, registration_body
from tests.api.helpers import Api, Phone
from tests.pages.forms import Form, forms, step_form

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
CSP = (
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)


@pytest.fixture
def api(client: httpx.AsyncClient, services: Services) -> Api:
    return Api(client, services)


async def submit(client: httpx.AsyncClient, form: Form, **values: str) -> httpx.Response:
    return await client.post(form.action, data={**form.fields, **values})


async def sign_in(
    client: httpx.AsyncClient, user: str = "alice", pw: str = "pw", url: str = "/login/root"
) -> httpx.Response:
    first = await client.get(url)
    assert first.status_code == 200, first.text
    return await submit(client, step_form(first), IDToken1=user, IDToken2=pw)


def number_of(page: httpx.Response) -> int:
    found = re.search(r'data-testid="challenge-number">(\d+)<', page.text)
    assert found, page.text
    return int(found.group(1))


async def test_the_first_page_is_a_labelled_form_with_the_security_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/login/root")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["cache-control"] == "no-store"
    assert '<html lang="en">' in response.text
    assert '<label for="IDToken1">User Name</label>' in response.text
    assert '<label for="IDToken2">Password</label>' in response.text
    assert "<script>" not in response.text and "style=" not in response.text
    form = step_form(response)
    assert form.action == "/login/root"
    assert form.fields["csrf"] == client.cookies["pushgate_csrf"]
    assert form.fields["authId"]
    set_cookie = response.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie


async def test_addresses(client: httpx.AsyncClient, services: Services) -> None:
    root = await client.get("/login", params={"goto": "/account"})
    assert root.status_code == 303 and root.headers["location"] == "/login/root?goto=/account"
    await services.accounts.create_realm("alpha")
    assert (await client.get("/login/alpha")).status_code == 200
    assert (await client.get("/login/alpha/PushAuthentication")).status_code == 200
    for missing in ("/login/nowhere", "/login/root/NoSuchJourney", "/login/bad%20realm!"):
        response = await client.get(missing)
        assert response.status_code == 404, missing
        assert "There is no such sign-in page." in response.text
        assert response.headers["content-security-policy"] == CSP
    css = await client.get("/pages/static/pages.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (await client.get("/pages/static/../render.py")).status_code == 404


async def test_a_post_without_the_csrf_token_does_nothing(
    client: httpx.AsyncClient, services: Services
) -> None:
    await services.accounts.create_user("/", "alice", "pw")
    form = step_form(await client.get("/login/root"))
    values = {**form.fields, "IDToken1": "alice", "IDToken2": "pw"}
    refused = await client.post(form.action, data={**values, "csrf": ""})
    assert refused.status_code == 403
    assert "nothing was done" in refused.text
    wrong = await client.post(form.action, data={**values, "csrf": "x" * 43})
    assert wrong.status_code == 403
    # The step was not spent: the same form still goes on.
    accepted = await client.post(form.action, data=values)
    assert accepted.status_code == 200
    assert "Register device" in accepted.text  # no device yet: the registration options


async def test_a_step_is_bound_to_the_browser_that_began_it(
    client: httpx.AsyncClient, services: Services
) -> None:
    await services.accounts.create_user("/", "alice", "pw")
    form = step_form(await client.get("/login/root"))
    other = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with other:
        own = step_form(await other.get("/login/root"))  # its own CSRF cookie and token
        stolen = {**form.fields, "csrf": own.fields["csrf"], "IDToken1": "alice", "IDToken2": "pw"}
        response = await other.post(form.action, data=stolen)
    assert response.status_code == 403
    assert (await submit(client, form, IDToken1="alice", IDToken2="pw")).status_code == 200


async def test_replayed_and_tampered_steps_are_refused(
    client: httpx.AsyncClient, services: Services
) -> None:
    await services.accounts.create_user("/", "alice", "pw")
    form = step_form(await client.get("/login/root"))
    auth_id = form.fields["authId"]
    tampered = auth_id[:-4] + ("BBBB" if auth_id.endswith("AAAA") else "AAAA")
    bad = await submit(client, form, authId=tampered, IDToken1="alice", IDToken2="pw")
    assert bad.status_code == 400
    assert "cannot be continued" in bad.text
    assert (await submit(client, form, IDToken1="alice", IDToken2="pw")).status_code == 200
    again = await submit(client, form, IDToken1="alice", IDToken2="pw")
    assert again.status_code == 400
    assert "sent already" in again.text
    wrong_type = await submit(client, step_form(await client.get("/login/root")), IDToken1="alice")
    assert wrong_type.status_code == 200  # an empty password: the page again, with the error
    assert "That did not work" in wrong_type.text
    assert 'aria-invalid="true" aria-describedby="form-error"' in wrong_type.text


async def test_a_wrong_password_is_a_failure_page(
    client: httpx.AsyncClient, services: Services
) -> None:
    await services.accounts.create_user("/", "alice", "pw")
    failed = await sign_in(client, pw="guess")
    assert failed.status_code == 401
    assert "Sign-in failed" in failed.text
    assert 'href="/login/root"' in failed.text


async def test_a_locked_user_gets_the_failure_page(
    client: httpx.AsyncClient, services: Services
) -> None:
    await services.accounts.create_user("/", "dave", "pw")
    await services.accounts.set_realm_policy("/", {"lockAfterFailures": 2})
    for _ in range(2):
        assert (await sign_in(client, "dave", "guess")).status_code == 401
    locked = await sign_in(client, "dave", "pw")
    assert locked.status_code == 401
    assert "lock the account" in locked.text


async def register_on_the_page(api: Api, client: httpx.AsyncClient) -> tuple[httpx.Response, Phone]:
    options = await sign_in(client)
    assert "Register device" in options.text and "Skip this step" in options.text
    assert "Opt-out" in options.text and "Get the app" in options.text
    page = await submit(client, step_form(options), **step_form(options).button("Register device"))
    assert page.status_code == 200
    assert '<svg role="img"' in page.text and "<title>QR code to scan" in page.text
    link = re.search(r'<a class="qr-link" href="([^"]+)"', page.text)
    assert link is not None
    uri_text = link.group(1).replace("&amp;", "&")
    assert uri_text.startswith("pushauth://")
    assert "This code stays valid for" in page.text
    uri = qr.parse(uri_text)
    device, uid = new_device(), new_mechanism_uid()
    body = registration_body(uri, uid, device)
    assert (await api.post(uri.register_url, body)).status_code == 200
    phone = Phone("/", "alice", mechanism_from_uri(uri, uid), device, body)
    codes = await submit(client, forms(page)["poll-form"])
    assert codes.status_code == 200, codes.text
    return codes, phone


async def test_registration_codes_and_a_push_login(
    api: Api, client: httpx.AsyncClient, services: Services
) -> None:
    await services.accounts.create_user("/", "alice", "pw")
    codes, phone = await register_on_the_page(api, client)
    shown = re.findall(r"<li><code>([0-9A-Za-z]{10})</code></li>", codes.text)
    assert len(shown) == 10
    waiting = await submit(client, step_form(codes))
    assert "Check your phone" in waiting.text
    number = number_of(waiting)
    assert "Lost phone? Use a recovery code" in waiting.text
    push = await api.push(phone)
    assert number in push.numbers
    assert push.context is not None and push.context.get("userAgent")
    assert (await api.answer(phone, push, number=number)).status_code == 200
    done = await submit(client, forms(waiting)["poll-form"])
    assert done.status_code == 303
    assert done.headers["location"] == "/account"
    cookies = done.headers.get_list("set-cookie")
    cookie = next(h for h in cookies if h.startswith("iPlanetDirectoryPro="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    account = await client.get("/account")
    assert account.status_code == 200
    assert "Signed in as <strong>alice</strong>" in account.text
    assert account.text.count('data-testid="device"') == 1
    assert "You have <strong>10</strong> unused recovery codes" in account.text


async def test_a_recovery_code_signs_in_once(
    api: Api, client: httpx.AsyncClient, services: Services
) -> None:
    await services.accounts.create_user("/", "alice", "pw")
    codes, _ = await register_on_the_page(api, client)
    code = re.findall(r"<li><code>([0-9A-Za-z]{10})</code></li>", codes.text)[0]
    await submit(client, step_form(codes))  # the first push: never answered
    for attempt in range(2):
        waiting = await sign_in(client)
        lost = step_form(waiting)
        entry = await submit(client, lost, **lost.button("Lost phone? Use a recovery code"))
        assert "Use a recovery code" in entry.text
        result = await submit(client, step_form(entry), IDToken1=code)
        if attempt == 0:
            assert result.status_code == 303
        else:
            assert result.status_code == 200
            assert "That did not work" in result.text
    assert await services.journeys.recovery_codes_left("/", "alice") == 9


async def test_a_denial_fails(api: Api, client: httpx.AsyncClient, services: Services) -> None:
    await services.accounts.create_user("/", "alice", "pw")
    phone = await api.register("/", "alice")
    waiting = await sign_in(client)
    push = await api.push(phone)
    assert (await api.answer(phone, push, approve=False)).status_code == 200
    failed = await submit(client, forms(waiting)["poll-form"])
    assert failed.status_code == 401
    assert "Sign-in failed" in failed.text


async def test_goto_is_limited_to_this_site(
    api: Api, client: httpx.AsyncClient, services: Services
) -> None:
    await services.accounts.create_user("/", "alice", "pw")
    await services.accounts.create_user("/", "bob", "pw")
    cases = [
        ("/account?x=1", "/account?x=1"),
        ("https://evil.example/", "/account"),
        ("//evil.example", "/account"),
        ("/\\evil.example", "/account"),
    ]
    for goto, expected in cases:
        options = await sign_in(client, url=f"/login/root?goto={goto}")
        skip = step_form(options).button("Skip this step")
        done = await submit(client, step_form(options), **skip)
        assert done.status_code == 303, goto
        assert done.headers["location"] == expected, goto


async def test_opt_out_is_offered_and_remembered(
    client: httpx.AsyncClient, services: Services
) -> None:
    await services.accounts.create_user("/", "carol", "pw")
    options = await sign_in(client, "carol")
    done = await submit(client, step_form(options), **step_form(options).button("Opt-out"))
    assert done.status_code == 303
    again = await sign_in(client, "carol")  # opted out: straight in
    assert again.status_code == 303


async def test_the_get_the_app_page_links_the_stores(
    client: httpx.AsyncClient, services: Services
) -> None:
    await services.accounts.create_user("/", "alice", "pw")
    options = await sign_in(client)
    app = await submit(client, step_form(options), **step_form(options).button("Get the app"))
    assert 'href="https://apps.apple.com/' in app.text
    assert 'href="https://play.google.com/' in app.text
    back = await submit(client, step_form(app), **step_form(app).button("Continue"))
    assert "Register device" in back.text


async def signed_in(api: Api, client: httpx.AsyncClient, services: Services) -> Phone:
    await services.accounts.create_user("/", "alice", "pw")
    phone = await api.register("/", "alice")
    waiting = await sign_in(client)
    push = await api.push(phone)
    assert (await api.answer(phone, push, number=number_of(waiting))).status_code == 200
    assert (await submit(client, forms(waiting)["poll-form"])).status_code == 303
    return phone


async def test_the_account_page_needs_a_login(client: httpx.AsyncClient) -> None:
    response = await client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/login/root?goto=/account"
    client.cookies.set("iPlanetDirectoryPro", "not-a-session")
    assert (await client.get("/account")).status_code == 303


async def test_rename_remove_codes_and_logout(
    api: Api, client: httpx.AsyncClient, services: Services
) -> None:
    phone = await signed_in(api, client, services)
    page = await client.get("/account")
    rename = next(f for f in forms(page).values() if f.action.endswith("/rename"))
    refused = await client.post(rename.action, data={"name": "Work phone"})  # no CSRF token
    assert refused.status_code == 403
    bad = await submit(client, rename, name="\x01")
    assert bad.status_code == 400 and "control characters" in bad.text
    renamed = await submit(client, rename, name="Work phone")
    assert renamed.status_code == 303
    page = await client.get(renamed.headers["location"])
    assert "The device was renamed." in page.text and "Work phone" in page.text

    new_codes = next(f for f in forms(page).values() if f.action == "/account/recovery-codes")
    shown = await submit(client, new_codes)
    codes = re.findall(r"<li><code>([0-9A-Za-z]{10})</code></li>", shown.text)
    assert len(codes) == 10
    assert await services.journeys.recovery_codes_left("/", "alice") == 10
    assert "<code>" not in (await client.get("/account")).text  # shown once

    remove = next(f for f in forms(page).values() if f.action.endswith("/remove"))
    removed = await submit(client, remove)
    assert removed.status_code == 303
    devices = await services.devices.list_for_user("/", "alice")
    assert devices == []
    async with services.store.autocommit() as db:
        found = await db.devices.get("/", phone.mechanism.mechanism_uid)
    assert found is not None and found[0].status is DeviceStatus.REMOVED
    gone = await submit(client, remove)
    assert gone.status_code == 404

    page = await client.get("/account")
    logout = next(f for f in forms(page).values() if f.action == "/account/logout")
    out = await submit(client, logout)
    assert out.status_code == 303 and out.headers["location"] == "/login/root"
    assert (await client.get("/account")).status_code == 303


async def test_a_page_left_open_too_long_starts_over(
    api: Api, client: httpx.AsyncClient, services: Services
) -> None:
    await services.accounts.create_user("/", "alice", "pw")
    form = step_form(await client.get("/login/root"))
    api.advance(601)
    late = await submit(client, form, IDToken1="alice", IDToken2="pw")
    assert late.status_code == 401
    assert "timed out" in late.text and 'href="/login/root"' in late.text


async def test_the_wait_asks_without_spending_the_step(
    api: Api, client: httpx.AsyncClient, services: Services
) -> None:
    await services.accounts.create_user("/", "alice", "pw")
    phone = await api.register("/", "alice")
    waiting = await sign_in(client)
    poll = forms(waiting)["poll-form"]
    push = await api.push(phone)
    assert (await api.answer(phone, push, number=number_of(waiting))).status_code == 200
    asked = await submit(client, poll, wait="1")
    assert asked.status_code == 200 and asked.json() == {"ended": True}
    assert asked.headers["cache-control"] == "no-store"
    assert (await submit(client, poll)).status_code == 303  # the step was not spent
