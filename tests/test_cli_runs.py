"""The command line does what the Runs tab does: train, follow the log, stop, resume, delete — typed as a user
types them, each a fresh `python -m workbench` process."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.conftest import PRESETS, REPO
from workbench.runs.queue import RunQueue

QUICK = ["train.threads=1", "data.cutoff_len=64", "train.per_device_train_batch_size=2", "train.save_steps=100"]


def workbench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def wait_state(job_id: str, *states: str, timeout: float = 300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        RunQueue().reconcile()
        job = RunQueue().get(job_id)
        if job.state in states:
            return job
        time.sleep(0.3)
    raise AssertionError(f"run {job_id} never became {states}")


@pytest.mark.slow
def test_train_logs_stop_resume_delete_from_the_command_line(home):
    sets = [f"--set={s}" for s in [*QUICK, "train.max_steps=40"]]
    out = workbench("train", str(PRESETS / "sft-lora-identity.yaml"), *sets, "--detach")
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.split()[1]
    deadline = time.time() + 300
    while RunQueue().get(job_id).files.read_status().get("step", 0) < 2:
        assert time.time() < deadline
        time.sleep(0.3)

    logs = workbench("logs", job_id, "-n", "3")
    assert logs.returncode == 0 and len(logs.stdout.splitlines()) == 3

    stop = workbench("stop", job_id)
    assert stop.returncode == 0 and "stopping: saving a checkpoint" in stop.stdout
    stopped = wait_state(job_id, "stopped", "failed")
    assert stopped.state == "stopped" and stopped.resumable
    checkpoint = stopped.files.last_checkpoint().name
    assert "stopped" in workbench("jobs").stdout

    resume = workbench("resume", job_id, "--detach")
    assert resume.returncode == 0 and f"queued again, from {checkpoint}" in resume.stdout
    wait_state(job_id, "running")
    refused = workbench("delete", job_id)
    assert refused.returncode == 2 and "stop it before deleting it" in refused.stderr

    # Following the log prints it as it grows and returns once the run has ended.
    follower = subprocess.Popen(
        [sys.executable, "-m", "workbench", "logs", job_id, "--follow"], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    time.sleep(2)
    assert workbench("stop", job_id).returncode == 0
    followed, _ = follower.communicate(timeout=120)
    assert follower.returncode == 0 and "resuming from" in followed and checkpoint in followed

    wait_state(job_id, "stopped")
    deleted = workbench("delete", job_id)
    assert deleted.returncode == 0 and "deleted" in deleted.stdout
    assert workbench("jobs").stdout.strip() == "no runs yet"
    assert not (home / "runs" / job_id).exists()


def test_lifecycle_commands_refuse_what_does_not_fit_the_run(home):
    for command in ("stop", "resume", "delete", "logs"):
        out = workbench(command, "no-such-run")
        assert out.returncode == 2 and "no run with id 'no-such-run'" in out.stderr, (command, out.stderr)
