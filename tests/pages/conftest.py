"""The browser the page tests drive: Debian's chromium through Playwright, one per module."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.support import IN_CI

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# As the machine's notes advise: no background traffic, which a closed network refuses.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if CHROMIUM is None:
        message = "chromium is not installed (.ci/run installs Debian's package)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        try:
            yield launched
        finally:
            await launched.close()
