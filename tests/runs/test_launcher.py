"""The warm launcher: a run it forks trains like any other, starts sooner, and outlives the launcher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PRESETS, REPO
from tests.runs.test_queue import wait_for
from tests.ui.browser import App
from workbench.config import load_config
from workbench.runs import spawn
from workbench.runs.queue import RunQueue
from workbench.runs.submission import freeze

pytestmark = pytest.mark.slow
QUICK_ONE_STEP = ["train.max_steps=1", "train.threads=1", "data.cutoff_len=64", "data.datasets.0.max_samples=4"]


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


def launchers_of(home: Path) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _is_launcher_of(p, home)]


def test_the_launcher_is_gone_soon_after_the_ui_is_killed_at_any_point_of_its_start_up(tmp_path):
    # SIGKILL leaves the UI no chance to say goodbye; the launcher must notice on its own, whether it is still
    # importing the training stack or already serving.
    moments = ["launcher starting", 1.0, "launcher serving"]
    for n, moment in enumerate(moments):
        home = tmp_path / f"home-{n}"
        ui = App(home).spawn()
        if moment == "launcher starting":  # its pid file is written before the heavy imports begin
            wait_until(lambda home=home: (home / "launcher.pid").exists() and not (home / "launcher.sock").exists())
        elif moment == "launcher serving":
            wait_until(lambda home=home: (home / "launcher.sock").exists(), 90)
        else:
            time.sleep(moment)
        ui.proc.kill()
        ui.proc.wait()
        killed = time.time()
        while launchers_of(home):
            assert time.time() - killed < 10, f"the launcher outlived a UI killed at {moment!r}"
            time.sleep(0.1)


def test_a_worker_runs_with_the_environment_of_whoever_submitted_it(home):
    # A warm launcher runs with this process's environment; a run submitted from a shell with more set (a token,
    # another GPU choice) must see exactly that shell's environment, so it gets a fresh process.
    spawn.ensure_launcher()
    wait_for_launcher()
    store = RunQueue()
    ours = store.submit(freeze(load_config(PRESETS / "sft-lora-identity.yaml", QUICK_ONE_STEP)))
    ours = wait_for(store, ours.id, lambda j: j.state in ("finished", "failed"))
    assert ours.state == "finished", ours.error
    assert "HF_TOKEN" not in ours.files.read_status()["environment"]

    env = {**os.environ, "HF_TOKEN": "hf_only_in_this_shell", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "workbench", "train", str(PRESETS / "sft-lora-identity.yaml"), "--detach"]
    command += [f"--set={override}" for override in QUICK_ONE_STEP]
    out = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    theirs = next(job for job in store.list() if job.id != ours.id)
    worker = wait_for(store, theirs.id, lambda j: j.pid is not None)
    seen = wait_for(store, theirs.id, lambda j: "environment" in j.files.read_status()).files.read_status()
    assert seen["environment"]["HF_TOKEN"] == "set" and seen["environment"]["CUDA_VISIBLE_DEVICES"] == ""
    assert "hf_only_in_this_shell" not in json.dumps(seen)  # reported as set, never its value
    assert b"workbench.runs.worker" in Path(f"/proc/{worker.pid}/cmdline").read_bytes()  # not forked
    theirs = wait_for(store, theirs.id, lambda j: j.state in ("finished", "failed"))
    assert theirs.state == "finished", theirs.error


def wait_until(condition, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.02)
