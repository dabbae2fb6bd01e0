"""Twenty runs submitted at once, from browser tabs and from command-line processes, against one running app: every
one is queued, never more than one trains, and every one finishes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import PRESETS, REPO
from tests.ui.browser import App, open_tab, set_number
from workbench.runs.queue import RunQueue

pytestmark = pytest.mark.slow

TABS = 3
COMMAND_LINES = 17
ONE_STEP = ["train.max_steps=1", "train.threads=1", "data.cutoff_len=64", "data.datasets.0.max_samples=2"]


def prepare_tab(browser, app: App):
    """A tab with a dataset uploaded and a one-step run set up, Start not yet pressed."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app.url)
    page.locator("#data-upload input[type=file]").set_input_files(str(PRESETS / "data" / "identity.json"))
    page.locator("#data-summary").get_by_text("alpaca").wait_for(timeout=60_000)
    open_tab(page, "Train")
    set_number(page, "field-train-max_steps", "1")
    set_number(page, "field-data-cutoff_len", "64")
    page.get_by_text("Advanced").click()
    set_number(page, "field-train-threads", "1")
    page.get_by_text("Presets, YAML and command line").click()
    page.locator("#train-yaml").get_by_text("max_steps: 1").wait_for(timeout=30_000)
    return page


def test_twenty_submissions_at_once_are_all_queued_and_run_one_at_a_time(browser, tmp_path, monkeypatch, tiny_model):
    home = tmp_path / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    app = App(home).start()
    try:
        pages = [prepare_tab(browser, app) for _ in range(TABS)]
        queue = RunQueue()
        most_active, watching = [0], threading.Event()

        def watch() -> None:
            while not watching.is_set():
                most_active[0] = max(most_active[0], sum(job.active for job in queue.list()))
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        command = [sys.executable, "-m", "workbench", "train", str(PRESETS / "sft-lora-identity.yaml"), "--detach"]
        # The command lines train the tiny model, untracked: the queue is what is tested, and 17 runs cost seconds.
        command += [f"--set={s}" for s in [*ONE_STEP, f"model.name_or_path={tiny_model}", "train.report_to=none"]]
        env = {**os.environ, "WORKBENCH_HOME": str(home)}
        shells = [
            subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
            for _ in range(COMMAND_LINES)
        ]
        for page in pages:
            page.locator("#train-start").click()
        for page in pages:
            page.locator("#runs-progress").get_by_text("steps").wait_for(timeout=120_000)
        ids = [shell.communicate(timeout=300)[0].split()[1] for shell in shells]
        assert all(shell.returncode == 0 for shell in shells)

        deadline = time.time() + 900
        while len(queue.list()) < TABS + COMMAND_LINES or not all(j.state == "finished" for j in queue.list()):
            assert time.time() < deadline, {j.id: j.state for j in queue.list()}
            assert not [j for j in queue.list() if j.state in ("failed", "stopped")], "a run did not finish"
            queue.reconcile()
            time.sleep(0.5)
        watching.set()
        watcher.join()

        jobs = queue.list()
        assert len(jobs) == TABS + COMMAND_LINES and set(ids) <= {j.id for j in jobs}
        assert most_active[0] == 1, f"{most_active[0]} runs trained at once"
        # The queue ran them in the order they came, each to its own folder, and the page lists them all.
        started = sorted(jobs, key=lambda j: j.started_at)
        assert [j.id for j in started] == [j.id for j in sorted(jobs, key=lambda j: (j.queued_at, j.id))]
        assert len({j.run_dir for j in jobs}) == len(jobs)
        from_the_page = [j for j in jobs if j.id not in ids]
        assert len(from_the_page) == TABS and all(j.files.read_status()["forked"] for j in from_the_page)
        for job in jobs[:3]:
            pages[0].locator("#runs-table").get_by_text(job.id).filter(visible=True).first.wait_for(timeout=30_000)
    finally:
        app.stop()
