"""Helpers for tests that drive the app in a real headless Chromium: the app process, tabs, fields, screenshots."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """`python app.py` in its own process, as a user starts it."""

    def __init__(self, home: Path, args: tuple[str, ...] = ()):
        self.home, self.port, self.proc, self.args = home, free_port(), None, list(args)
        self.log = home / "app.log"

    def spawn(self) -> App:
        """Start the process and return at once."""
        env = {**os.environ, "WORKBENCH_HOME": str(self.home), "GRADIO_ANALYTICS_ENABLED": "False"}
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "app.py", "--port", str(self.port), *self.args],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=log,
            )
        return self

    def start(self) -> App:
        """Start the process and wait until it serves."""
        self.spawn()
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                assert self.proc.poll() is None, self.log.read_text()
                time.sleep(0.2)
        raise AssertionError("app did not start:\n" + self.log.read_text())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def kill(self) -> None:
        """SIGKILL: the app gets no chance to clean up, as when the machine's OOM killer takes it."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def set_number(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input").first
    box.fill(value)
    box.press("Tab")


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
