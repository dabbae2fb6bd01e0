"""The whole click-through in a real headless Chromium: upload, train, watch, chat, download, load with PEFT."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

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

    def __init__(self, home: Path):
        self.home, self.port, self.proc = home, free_port(), None
        self.log = home / "app.log"

    def start(self) -> App:
        env = {**os.environ, "WORKBENCH_HOME": str(self.home), "GRADIO_ANALYTICS_ENABLED": "False"}
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "app.py", "--port", str(self.port)], cwd=REPO, env=env, stdout=log, stderr=log
            )
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


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: apt-get install -y chromium (the Makefile's test target does this)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        yield browser
        browser.close()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def set_number(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input").first
    box.fill(value)
    box.press("Tab")


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_click_through_upload_train_watch_chat_download(browser, tmp_path, model_ref):
    app = App(tmp_path / "home").start()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.goto(app.url)

        # Data: upload a dataset; the format, rows and the rendered example appear.
        page.locator("#data-upload input[type=file]").set_input_files(str(REPO / "presets/data/identity.json"))
        page.locator("#data-summary").get_by_text("alpaca").wait_for(timeout=60_000)
        page.locator("#data-stats").get_by_text("tokens trained").wait_for(timeout=120_000)
        shot(page, "1-data")

        # Train: LoRA with a short, small run, then Start.
        open_tab(page, "Train")
        page.locator("#train-method-info").get_by_text("LoRA").wait_for(timeout=30_000)
        set_number(page, "field-train-max_steps", "8")
        set_number(page, "field-data-cutoff_len", "96")
        set_number(page, "field-train-learning_rate", "0.001")
        page.get_by_text("Advanced").click()
        set_number(page, "field-train-threads", "1")
        set_number(page, "field-train-save_steps", "4")
        page.get_by_text("Presets, YAML and command line").click()
        page.locator("#train-yaml").get_by_text("max_steps: 8").wait_for(timeout=30_000)
        page.locator("#train-estimate").get_by_text(re.compile(r"(Fits|Tight) · peak memory")).wait_for(timeout=60_000)
        shot(page, "2-train")
        page.locator("#train-start").click()

        # Runs: the page switches here; the chart gains points while the worker trains.
        page.locator("#runs-progress").get_by_text(re.compile(r"running|starting")).wait_for(timeout=60_000)
        page.locator("#runs-progress").get_by_text(re.compile(r" [1-7]/8 steps")).wait_for(timeout=120_000)
        first = _steps(page)
        page.locator("#runs-progress").get_by_text(re.compile(rf" [{first + 1}-8]/8 steps")).wait_for(timeout=120_000)
        shot(page, "3-runs")
        page.locator("#runs-progress").get_by_text("finished").wait_for(timeout=300_000)

        # Chat: the tuned adapter answers, streamed.
        open_tab(page, "Chat")
        page.get_by_role("button", name="↻ runs").first.click()
        page.locator("#chat-adapter input").click()
        page.get_by_role("option", name=re.compile("lora")).click()
        page.locator("#chat-side-by-side input").check()
        page.locator("#chat-input textarea").fill("Who are you?")  # a prompt from the training data
        page.locator("#chat-send").click()
        tuned = page.locator('#chat-tuned [data-testid="bot"]')
        lengths, deadline = [], time.time() + 240
        while "Done in" not in page.locator("#chat-status").inner_text():
            assert time.time() < deadline, "no reply within 4 minutes"
            if tuned.count():
                lengths.append(len(tuned.first.inner_text()))
            page.wait_for_timeout(50)
        assert len({n for n in lengths if n}) >= 2, "the tuned reply arrived in one piece, not streamed"
        tuned_text = tuned.first.inner_text().strip()
        base_text = page.locator('#chat-base-bot [data-testid="bot"]').first.inner_text().strip()
        assert tuned_text and base_text
        assert tuned_text != base_text  # side by side: the short run changed the model's answer
        shot(page, "4-chat")

        # Export: download the zip and load it with plain PEFT.
        open_tab(page, "Export")
        page.get_by_role("button", name="↻ runs").last.click()
        page.locator("#export-run input").click()
        page.get_by_role("option", name=re.compile("lora")).click()
        page.locator("#export-zip").click()
        page.locator("#export-download").wait_for(timeout=60_000)
        with page.expect_download() as info:
            page.locator("#export-download").click()
        archive = tmp_path / "adapter.zip"
        info.value.save_as(archive)
        shot(page, "5-export")
    finally:
        app.stop()

    folder = tmp_path / "unzipped"
    zipfile.ZipFile(archive).extractall(folder)
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_ref.path), str(folder / "adapter"))
    assert tuned.peft_config["default"].base_model_name_or_path == "HuggingFaceTB/SmolLM2-135M-Instruct"


def _steps(page) -> int:
    text = page.locator("#runs-progress").inner_text()
    return int(re.search(r" (\d+)/8 steps", text).group(1))
