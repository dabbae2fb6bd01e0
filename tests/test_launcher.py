"""The warm launcher: a run it forks trains like any other, starts sooner, and outlives the launcher."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import PRESETS
from tests.test_jobs import wait_for
from workbench.config import load_config
from workbench.runs import launcher
from workbench.runs.store import JobStore
from workbench.runs.submission import freeze

pytestmark = pytest.mark.slow


def wait_for_launcher(timeout: float = 60) -> int:
    deadline = time.time() + timeout
    while not launcher.socket_path().exists():  # it listens once the training stack is imported
        assert time.time() < deadline, "the launcher did not come up"
        time.sleep(0.1)
    return int(launcher.pid_path().read_text())


def test_a_forked_worker_trains_and_is_told_from_its_launcher(home):
    launcher.ensure_running()
    launcher_pid = wait_for_launcher()
    launcher.ensure_running()  # a second call finds the running one and starts nothing
    time.sleep(0.5)
    assert int(launcher.pid_path().read_text()) == launcher_pid

    store = JobStore()
    overrides = ["train.max_steps=3", "train.threads=1", "data.cutoff_len=64", "data.datasets.0.max_samples=12"]
    submitted = time.time()
    job = store.submit(freeze(load_config(PRESETS / "sft-lora-identity.yaml", overrides)))
    assert b"workbench.runs.launcher" in Path(f"/proc/{job.pid}/cmdline").read_bytes()  # forked, not started afresh
    job = wait_for(store, job.id, lambda j: j.files.read_status().get("train_began_at"))
    assert job.files.read_status()["train_began_at"] - submitted < 5  # no seconds of imports first

    os.kill(launcher_pid, signal.SIGKILL)  # the worker lives on without its launcher
    job = wait_for(store, job.id, lambda j: j.state in ("finished", "failed"))
    assert job.state == "finished", job.error
    assert (job.files.adapter / "adapter_model.safetensors").is_file()

    # With the launcher gone, its stale socket is ignored and the next worker starts the ordinary way.
    assert launcher.start_worker(job.files.root, job.files.log, {}) is None


def test_starting_twice_while_the_first_still_imports_leaves_one_launcher(home):
    launcher.ensure_running()
    deadline = time.time() + 30
    while not launcher.pid_path().exists():
        assert time.time() < deadline
        time.sleep(0.05)
    first = int(launcher.pid_path().read_text())
    launcher.ensure_running()  # the first is importing and not yet listening
    wait_for_launcher()
    time.sleep(1)
    launchers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_launcher_of(p, home)]
    assert [int(p.name) for p in launchers] == [first]


def _is_launcher_of(proc: Path, home: Path) -> bool:
    try:
        return (
            b"workbench.runs.launcher" in (proc / "cmdline").read_bytes()
            and str(home).encode() in (proc / "environ").read_bytes()
        )
    except OSError:
        return False


def test_the_launcher_leaves_with_the_process_that_started_it(home, tmp_path):
    import subprocess
    import sys

    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from workbench.runs import launcher; launcher.ensure_running(); import time; time.sleep(60)",
        ],
        env={**os.environ, "WORKBENCH_HOME": str(home)},
    )
    pid = wait_for_launcher()
    starter.kill()
    starter.wait()
    deadline = time.time() + 15
    while Path(f"/proc/{pid}").exists():
        assert time.time() < deadline, "the launcher outlived the process that started it"
        time.sleep(0.2)
