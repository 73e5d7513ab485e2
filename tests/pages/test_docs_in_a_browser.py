"""`/docs` in a real browser (Debian chromium driven by Playwright), with every request that
does not go to the server itself refused: the Swagger UI must render from the assets the
server ships (issue 6: it was blank on a machine without internet)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Route

from pushgate.api.app import create_app
from pushgate.services import Services
from tests.api.live import serving


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_swagger_ui_renders_offline(services: Services, browser: Browser) -> None:
    refused: list[str] = []
    errors: list[str] = []

    async def local_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort()

    async with serving(create_app(services, close_store=False)) as port:
        page = await browser.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.route("**/*", local_only)
        await page.goto(f"http://127.0.0.1:{port}/docs")
        title = page.locator(".swagger-ui .info .title")
        await title.wait_for(timeout=20_000)
        assert "pushgate" in await title.inner_text()
        paths = await page.locator(".opblock-summary-path").all_inner_texts()
        await page.close()
    assert {"/v1/push/sessions", "/v1/push/sessions/{id}"} <= {p.strip() for p in paths}
    assert refused == []
    assert errors == []
