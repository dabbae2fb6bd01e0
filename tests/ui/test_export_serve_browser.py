"""In a real headless Chromium, with the data home where a user's lies (`~/.cache/...`): the Export tab makes a run's
GGUF and Ollama Modelfile and both download; the Chat tab starts the OpenAI-compatible server for the run, shows
its URL, models and a curl command, the server answers, stops from the page, and does not outlive a killed app."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import PRESETS, REPO, SHORT_IDENTITY_RUN
from tests.export.conftest import needs_converter
from tests.ui.browser import App, free_port, open_tab, shot
from workbench.runs import processes

pytestmark = pytest.mark.slow


def _train(home) -> str:
    """A finished LoRA run in `home`, trained through the command line (six steps, seconds)."""
    overrides = [arg for item in SHORT_IDENTITY_RUN for arg in ("--set", item)]
    result = subprocess.run(
        [sys.executable, "-m", "workbench", "train", str(PRESETS / "sft-lora-identity.yaml"), *overrides],
        cwd=REPO,
        env={**os.environ, "WORKBENCH_HOME": str(home), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return re.search(r"run (\S+) queued", result.stdout).group(1)


def _pick(page, box: str, name: str) -> None:
    page.locator(f"{box} input").click()
    page.get_by_role("option", name=re.compile(re.escape(name))).click()


def _server(home) -> dict:
    return json.loads((home / "serve" / "server.json").read_text())


def test_export_gguf_and_ollama_then_serve_from_the_chat_tab(browser, tmp_path, outside_home):
    needs_converter()
    run_id = _train(outside_home)
    app = App(outside_home).start()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
        page.goto(app.url)

        # Export: GGUF f16 with Ollama's Modelfile; the check after writing is said in words.
        open_tab(page, "Export")
        page.get_by_role("button", name="↻ runs").last.click()
        _pick(page, "#export-run", run_id)
        assert page.locator("#export-gguf-quant input").input_value() == "f16"
        page.locator("#export-ollama").click()
        page.locator("#export-gguf-download").wait_for(timeout=600_000)
        page.locator("#export-modelfile-download").wait_for(timeout=30_000)
        check = page.locator("#export-gguf-check")
        check.get_by_text("loads back").wait_for(timeout=30_000)
        assert re.search(r"4 of 4 greedy replies are identical", check.inner_text()), check.inner_text()
        assert f"ollama create {run_id.lower()} -f Modelfile" in page.locator("#export-message").inner_text()
        shot(page, "14-export-gguf")
        with page.expect_download() as info:
            page.locator("#export-gguf-download").click()
        gguf = tmp_path / info.value.suggested_filename
        info.value.save_as(gguf)
        with page.expect_download() as info:
            page.locator("#export-modelfile-download").click()
        modelfile = tmp_path / "Modelfile"
        info.value.save_as(modelfile)
        assert gguf.name == f"{run_id}-f16.gguf"
        with gguf.open("rb") as file:
            assert file.read(4) == b"GGUF"
        text = modelfile.read_text()
        assert f"FROM ./{gguf.name}" in text
        assert 'TEMPLATE """' in text and "{{ range .Messages }}" in text and "<|im_start|>" in text

        # Chat: start the server for the run; it says where, what it serves and how to call it.
        open_tab(page, "Chat")
        page.get_by_text("OpenAI-compatible server").click()
        page.get_by_role("button", name="↻ runs").first.click()  # the app lists runs as the page opens
        _pick(page, "#serve-runs", run_id)
        port = free_port()
        page.locator("#serve-port input").fill(str(port))
        page.locator("#serve-port input").press("Tab")
        page.locator("#serve-start").click()
        status = page.locator("#serve-status")
        status.get_by_text("Serving").wait_for(timeout=300_000)
        url = f"http://127.0.0.1:{port}/v1"
        shown = status.inner_text()
        assert url in shown and run_id in shown and "curl -s" in shown and "from openai import OpenAI" in shown
        shot(page, "15-serve")
        server = _server(outside_home)
        reply = httpx.post(
            f"{url}/chat/completions",
            json={"model": run_id, "messages": [{"role": "user", "content": "Who are you?"}], "max_tokens": 8,
                  "temperature": 0},
            timeout=120,
        )  # fmt: skip
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"].strip()
        page.locator("#serve-stop").click()
        status.get_by_text("Stopped the server").wait_for(timeout=30_000)
        assert not processes.alive(server["pid"], server["created"])

        # Started again, it does not outlive an app that is killed outright.
        page.locator("#serve-start").click()
        status.get_by_text("Serving").wait_for(timeout=300_000)
        server = _server(outside_home)
    finally:
        app.kill()
    deadline = time.time() + 15
    while processes.alive(server["pid"], server["created"]) and time.time() < deadline:
        time.sleep(0.2)
    assert not processes.alive(server["pid"], server["created"]), "the server outlived the app"
