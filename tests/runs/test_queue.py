"""The job store and queue: stop, crash, reconcile, resume and delete, with real worker processes."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.conftest import PRESETS
from workbench.config import load_config
from workbench.runs.queue import RunQueue
from workbench.runs.store import JobError
from workbench.runs.submission import freeze

QUICK = [
    "train.threads=1",
    "train.per_device_train_batch_size=2",
    "data.cutoff_len=64",
    "data.datasets.0.max_samples=40",
    "train.lr_scheduler_type=constant",
]


def submit(store: RunQueue, *overrides: str, start: bool = True):
    config = freeze(load_config(PRESETS / "sft-lora-identity.yaml", [*QUICK, *overrides]))
    return store.submit(config, start=start)


def wait_for(store: RunQueue, job_id: str, predicate, timeout: float = 300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        store.reconcile()
        job = store.get(job_id)
        if predicate(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"timed out; last state {job.state}, status {job.files.read_status()}")


def logged_steps(job) -> list[int]:
    return [r["step"] for r in job.files.read_metrics() if "loss" in r]


def step_of(job) -> int:
    return job.files.read_status().get("step", 0)


@pytest.mark.slow
def test_stop_kill_reconcile_and_resume_continue_the_step_count(home):
    store = RunQueue()
    job = submit(store, "train.max_steps=8", "train.save_steps=100")  # only a stop saves a checkpoint

    # SIGTERM: the worker saves a checkpoint and exits within seconds, as "stopped".
    wait_for(store, job.id, lambda j: step_of(j) >= 2)
    store.cancel(job.id)
    asked = time.time()
    job = wait_for(store, job.id, lambda j: j.state == "stopped", timeout=60)
    assert time.time() - asked < 30
    stopped_at = int(job.files.last_checkpoint().name.split("-")[1])
    assert stopped_at >= 2 and job.resumable

    # Resume, then kill the worker outright: a fresh store (as after a restart) must not call it running.
    store.resume(job.id)
    job = wait_for(store, job.id, lambda j: logged_steps(j)[-1:] > [stopped_at] and j.state == "running")
    first_resumed_step = min(r["step"] for r in job.files.read_metrics() if r["step"] > stopped_at)
    assert first_resumed_step == stopped_at + 1  # continues, does not restart at 1
    os.killpg(job.pid, signal.SIGKILL)
    time.sleep(0.5)
    job = RunQueue().reconcile()[0]
    assert job.state == "failed"
    assert "ended without reporting why" in job.error
    assert job.resumable

    store.resume(job.id)
    job = wait_for(store, job.id, lambda j: j.state in ("finished", "failed"))
    assert job.state == "finished", job.error
    assert logged_steps(job) == list(range(1, 9))  # one record per step, no restarts, no duplicates
    assert (job.files.adapter / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_queue_runs_one_job_at_a_time_and_moves_on_by_itself(home):
    store = RunQueue()
    first = submit(store, "train.max_steps=2")
    second = submit(store, "train.max_steps=1")
    assert store.get(second.id).state == "queued"
    assert store.get(first.id).state in ("starting", "running")
    # Nobody calls reconcile here: the first worker starts the second as it exits.
    deadline = time.time() + 300
    while store.get(second.id).state not in ("finished", "failed") and time.time() < deadline:
        time.sleep(0.5)
    assert [store.get(j.id).state for j in (first, second)] == ["finished", "finished"]


def test_queued_job_can_be_stopped_and_deleted(home):
    store = RunQueue()
    job = submit(store, "train.max_steps=1", start=False)
    assert store.cancel(job.id).state == "stopped"
    with pytest.raises(JobError, match="only queued or running"):
        store.cancel(job.id)
    store.delete(job.id)
    assert store.list() == []
    assert not job.files.root.exists()


def test_unknown_run_is_a_clear_error(home):
    with pytest.raises(JobError, match="no run with id 'nope'"):
        RunQueue().get("nope")
