"""The browser the UI tests drive: Debian's Chromium through Playwright (never a downloaded browser)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.browser import BROWSER_ARGS, CHROMIUM


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: apt-get install -y chromium (the Makefile's test target does this)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        yield browser
        browser.close()
