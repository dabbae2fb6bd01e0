"""The warm launcher: a run it forks trains like any other, starts sooner, and outlives the launcher."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import PRESETS
from tests.runs.test_queue import wait_for
from workbench.config import load_config
from workbench.runs import spawn
from workbench.runs.queue import RunQueue
from workbench.runs.submission import freeze

pytestmark = pytest.mark.slow


def launcher_pid() -> int:
    return json.loads(spawn.pid_path().read_text())["pid"]


def wait_for_launcher(timeout: float = 60) -> int:
    deadline = time.time() + timeout
    while not spawn.socket_path().exists():  # it listens once the training stack is imported
        assert time.time() < deadline, "the launcher did not come up"
        time.sleep(0.1)
    return launcher_pid()


def test_a_forked_worker_trains_and_is_told_from_its_launcher(home):
    spawn.ensure_launcher()
    first_pid = wait_for_launcher()
    spawn.ensure_launcher()  # a second call finds the running one and starts nothing
    time.sleep(0.5)
    assert launcher_pid() == first_pid

    store = RunQueue()
    overrides = ["train.max_steps=3", "train.threads=1", "data.cutoff_len=64", "data.datasets.0.max_samples=12"]
    submitted = time.time()
    job = store.submit(freeze(load_config(PRESETS / "sft-lora-identity.yaml", overrides)))
    assert b"workbench.runs.launcher" in Path(f"/proc/{job.pid}/cmdline").read_bytes()  # forked, not started afresh
    job = wait_for(store, job.id, lambda j: j.files.read_status().get("train_began_at"))
    assert job.files.read_status()["train_began_at"] - submitted < 5  # no seconds of imports first

    os.kill(first_pid, signal.SIGKILL)  # the worker lives on without its launcher
    job = wait_for(store, job.id, lambda j: j.state in ("finished", "failed"))
    assert job.state == "finished", job.error
    assert (job.files.adapter / "adapter_model.safetensors").is_file()

    # With the launcher gone, its stale socket is ignored and the next worker starts the ordinary way.
    assert spawn._ask_launcher([], job.files.log, {}) is None


def test_starting_twice_while_the_first_still_imports_leaves_one_launcher(home):
    spawn.ensure_launcher()
    deadline = time.time() + 30
    while not spawn.pid_path().exists():
        assert time.time() < deadline
        time.sleep(0.05)
    first = launcher_pid()
    spawn.ensure_launcher()  # the first is importing and not yet listening
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
            "from workbench.runs import launcher; spawn.ensure_launcher(); import time; time.sleep(60)",
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
