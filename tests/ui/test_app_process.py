"""The app as a process: fast to open, free of training libraries, and a job outlives a restart."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import PRESETS, REPO
from tests.ui.browser import App, free_port
from workbench.config import load_config
from workbench.runs.queue import RunQueue
from workbench.runs.submission import freeze

# Training libraries, and the experiment trackers' (the worker reports to them; the page only shows where).
HEAVY = ["torch", "transformers", "peft", "trl", "tensorboard", "trackio", "wandb", "mlflow"]


def test_building_and_serving_the_page_imports_no_training_library(tmp_path):
    # In a fresh interpreter: build the app, serve one page, then list what got imported.
    code = f"""
import sys, json, urllib.request
from workbench.ui.app import build_app
app = build_app()
app.launch(prevent_thread_lock=True, server_port={free_port()}, quiet=True, ssr_mode=False)
html = urllib.request.urlopen(app.local_url).read().decode()
print(json.dumps({{"heavy": [m for m in {HEAVY!r} if m in sys.modules], "ok": "Workbench" in html}}))
app.close()
"""
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path), "GRADIO_ANALYTICS_ENABLED": "False"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))
    assert result == {"heavy": [], "ok": True}


def test_python_app_py_opens_a_working_page(tmp_path):
    # How fast it opens is measured by bench/app_startup.py, not here: a timed test fails on a busy machine.
    app = App(tmp_path / "home")
    app.start()
    try:
        while True:
            try:
                html = urllib.request.urlopen(app.url, timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.05)
    finally:
        app.stop()
    assert "Workbench" in html


@pytest.mark.slow
def test_job_keeps_training_across_an_app_restart(browser, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    app = App(home).start()
    overrides = ["train.max_steps=40", "train.threads=1", "data.cutoff_len=64", "train.save_steps=100"]
    job = RunQueue().submit(freeze(load_config(PRESETS / "sft-lora-identity.yaml", overrides)))
    try:
        page = browser.new_page()
        page.goto(app.url)
        page.get_by_role("tab", name="Runs").click()
        page.locator("#runs-table").get_by_text(job.id).filter(visible=True).first.wait_for(timeout=30_000)

        app.kill()  # the UI dies (SIGKILL: no clean-up) while the worker trains
        assert RunQueue().get(job.id).state in ("starting", "running")
        step_before = job.files.read_status().get("step", 0)
        app.start()

        page.goto(app.url)
        page.get_by_role("tab", name="Runs").click()
        page.locator("#runs-selector input").click()
        page.get_by_role("option", name=re.compile(job.id)).click()
        page.locator("#runs-progress").get_by_text("running").wait_for(timeout=60_000)
        deadline = time.time() + 120
        while job.files.read_status().get("step", 0) <= step_before + 1:
            assert time.time() < deadline, "training did not go on after the restart"
            time.sleep(0.5)
        page.locator("#runs-stop").click()
        page.locator("#runs-progress").get_by_text("stopped").wait_for(timeout=60_000)
    finally:
        app.stop()
        if RunQueue().get(job.id).state in ("starting", "running"):
            RunQueue().cancel(job.id)
