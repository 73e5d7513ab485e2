"""The login and account pages in a real browser (Debian chromium driven by Playwright, issue
9): a live server on loopback, the simulator as the phone, and a screenshot of every screen
in `docs/screenshots/` (the README shows them).

The server runs on the tests' FakeClock, so an expiry is a clock move, not a wait; the phone
talks to the same app in-process. One browser for the module, short timeouts.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page

from pushgate.api.app import create_app
from pushgate.services import Services
from pushgate.simulator.client import DeviceClient
from pushgate.simulator.device import Mechanism, new_device
from tests.api.live import serving
from tests.support import FakeClock

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TIMEOUT_MS = 10_000


class Site:
    def __init__(self, base: str, services: Services, phone: DeviceClient) -> None:
        self.base = base
        self.services = services
        self.phone = phone

    def advance(self, seconds: float) -> None:
        clock = self.services.clock
        assert isinstance(clock, FakeClock)
        clock.advance(seconds)


@asynccontextmanager
async def live(services: Services) -> AsyncIterator[Site]:
    """The app on loopback, in the test's own task (anyio's cancel scopes are per task)."""
    app = create_app(services, close_store=False)
    await services.accounts.create_user("/", "alice", "correct horse")
    # The phone reaches the app in-process, at the public URL its QR code names.
    phone = DeviceClient(new_device(), transport=httpx.ASGITransport(app=app), clock=services.clock)
    async with phone, serving(app) as port:
        yield Site(f"http://127.0.0.1:{port}", services, phone)


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    made = await browser.new_context(viewport={"width": 900, "height": 860}, locale="en-GB")
    made.set_default_timeout(TIMEOUT_MS)
    try:
        yield made
    finally:
        await made.close()


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def sign_in(page: Page, site: Site, password: str = "correct horse") -> None:
    await page.goto(f"{site.base}/login/root")
    await page.get_by_label("User Name").fill("alice")
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def register(page: Page, site: Site) -> Mechanism:
    """From the registration options to the recovery codes, the phone scanning the QR."""
    await page.get_by_role("button", name="Register device").click()
    link = page.locator("a.qr-link")
    uri = await link.get_attribute("href")
    assert uri is not None and uri.startswith("pushauth://")
    await shot(page, "03-scan-the-qr-code")
    mechanism = await site.phone.register(uri)
    # The page asks again by itself and moves on once the phone has registered.
    await page.get_by_test_id("recovery-codes").wait_for()
    return mechanism


async def approve(site: Site, mechanism: Mechanism, page: Page) -> None:
    number = int(await page.get_by_test_id("challenge-number").inner_text())
    (push,) = await site.phone.pending(mechanism)
    assert number in push.numbers
    await site.phone.approve(push, number=number)


async def test_registration_then_a_push_login_then_the_account_page(
    services: Services, context: BrowserContext
) -> None:
    async with live(services) as site:
        errors: list[str] = []
        page = await context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(f"{site.base}/login/root")
        await shot(page, "01-sign-in")
        await sign_in(page, site)
        await page.get_by_role("button", name="Register device").wait_for()
        await shot(page, "02-set-up-two-step-sign-in")
        mechanism = await register(page, site)
        codes = await page.get_by_test_id("recovery-codes").locator("code").all_inner_texts()
        assert len(codes) == 10 and all(re.fullmatch(r"[0-9A-Za-z]{10}", c) for c in codes)
        await shot(page, "04-save-your-recovery-codes")
        await page.get_by_role("button", name="I have saved my codes").click()
        await page.get_by_test_id("challenge-number").wait_for()
        await shot(page, "05-check-your-phone")
        await approve(site, mechanism, page)
        await page.wait_for_url(f"{site.base}/account")
        assert await page.get_by_test_id("device").count() == 1
        await shot(page, "06-your-account")

        await page.get_by_label("New name for pushgate simulator").fill("Work phone")
        await page.get_by_role("button", name="Rename").click()
        await page.get_by_text("The device was renamed.").wait_for()
        assert await page.locator(".device-name").inner_text() == "Work phone"
        await page.get_by_role("button", name="Make new recovery codes").click()
        assert await page.get_by_test_id("recovery-codes").locator("code").count() == 10
        await page.get_by_role("button", name="Remove Work phone").click()
        await page.get_by_text("The device was removed.").wait_for()
        assert await page.get_by_test_id("device").count() == 0
        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url(f"{site.base}/login/root")
        assert errors == []


async def signed_up(site: Site, page: Page) -> Mechanism:
    """alice with a phone (registered straight away), her browser at the number to pick."""
    started = await site.services.devices.start_registration("/", "alice")
    mechanism = await site.phone.register(started.uri)
    await sign_in(page, site)
    await page.get_by_test_id("challenge-number").wait_for()
    return mechanism


async def test_a_recovery_code_instead_of_the_phone(
    services: Services, context: BrowserContext
) -> None:
    async with live(services) as site:
        page = await context.new_page()
        await sign_in(page, site)
        await register(page, site)
        code = (await page.get_by_test_id("recovery-codes").locator("code").all_inner_texts())[0]
        await page.get_by_role("button", name="I have saved my codes").click()
        await page.get_by_role("button", name="Lost phone? Use a recovery code").click()
        await page.get_by_label("Recovery Code").fill("0000000000")
        await page.get_by_role("button", name="Continue").click()
        await page.get_by_role("alert").wait_for()
        assert await page.get_by_label("Recovery Code").get_attribute("aria-invalid") == "true"
        await shot(page, "07-use-a-recovery-code")
        await page.get_by_label("Recovery Code").fill(code)
        await page.get_by_role("button", name="Continue").click()
        await page.wait_for_url(f"{site.base}/account")
        assert "9</strong> unused recovery codes" in await page.content()


async def test_a_denial_on_the_phone(services: Services, context: BrowserContext) -> None:
    async with live(services) as site:
        page = await context.new_page()
        mechanism = await signed_up(site, page)
        (push,) = await site.phone.pending(mechanism)
        await site.phone.deny(push)
        await page.get_by_role("heading", name="Sign-in failed").wait_for()
        await shot(page, "08-sign-in-failed")


async def test_an_expired_push_is_sent_again(services: Services, context: BrowserContext) -> None:
    async with live(services) as site:
        page = await context.new_page()
        mechanism = await signed_up(site, page)
        (first,) = await site.phone.pending(mechanism)
        await page.get_by_test_id("challenge-number").evaluate("e => e.dataset.first = 'yes'")
        site.advance(121)  # past the journey's two-minute message timeout
        # The held page sees the push expire and the journey sends a new one: a new page.
        await page.locator("[data-testid=challenge-number]:not([data-first])").wait_for()
        pushes = [
            p for p in await site.phone.pending(mechanism) if p.message_id != first.message_id
        ]
        assert len(pushes) == 1
        await approve(site, mechanism, page)
        await page.wait_for_url(f"{site.base}/account")


async def test_without_javascript_the_waiting_page_still_moves_on(
    services: Services, browser: Browser
) -> None:
    async with live(services) as site:
        context = await browser.new_context(java_script_enabled=False)
        context.set_default_timeout(TIMEOUT_MS)
        try:
            page = await context.new_page()
            mechanism = await signed_up(site, page)
            await approve(site, mechanism, page)
            await page.wait_for_url(f"{site.base}/account")
        finally:
            await context.close()


async def test_the_other_screens(services: Services, context: BrowserContext) -> None:
    async with live(services) as site:
        page = await context.new_page()
        await sign_in(page, site)
        await page.get_by_role("button", name="Get the app").click()
        await page.get_by_role("link", name=re.compile("apps.apple.com")).wait_for()
        await shot(page, "09-get-the-app")
        await page.goto(f"{site.base}/login/nowhere")
        await page.get_by_role("heading", name="Page not found").wait_for()
        await shot(page, "10-no-such-page")
        await sign_in(page, site, password="wrong")
        await page.get_by_role("heading", name="Sign-in failed").wait_for()


async def test_a_form_without_its_csrf_cookie_is_refused(
    services: Services, context: BrowserContext
) -> None:
    async with live(services) as site:
        page = await context.new_page()
        await page.goto(f"{site.base}/login/root")
        await context.clear_cookies()  # as after a cross-site post: the SameSite cookie stays home
        await page.get_by_label("User Name").fill("alice")
        await page.get_by_label("Password").fill("correct horse")
        async with page.expect_response(lambda r: r.request.method == "POST") as info:
            await page.get_by_role("button", name="Sign in").click()
        response = await info.value
        assert response.status == 403
        await page.get_by_role("heading", name="This form has expired").wait_for()
        await shot(page, "11-form-expired")
