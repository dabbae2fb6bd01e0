"""The browser the UI tests drive (Debian's Chromium through Playwright, never a downloaded browser), and a data
home where a user's lies."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO, kill_workers
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


@pytest.fixture
def outside_home():
    """A data home laid out like the default `~/.cache/workbench`: outside the temp dir and the working directory,
    where Gradio serves nothing by default. Removed afterwards; the user's own data home is never touched."""
    root = Path.home() / ".cache" / "workbench-tests"
    path = root / uuid.uuid4().hex[:12]
    for other in (Path(tempfile.gettempdir()).resolve(), REPO):
        assert not path.resolve().is_relative_to(other), f"{path} lies under {other}"
    yield path
    kill_workers(path)
    shutil.rmtree(path, ignore_errors=True)
    try:
        root.rmdir()  # only when no other test's home is left in it
    except OSError:
        pass
