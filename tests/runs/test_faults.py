"""Faults injected into real runs: a worker killed outright at random steps and resumed, a damaged checkpoint, a
full disk. Each must lose nothing: no run, no logged step, no half-written file."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.conftest import PRESETS
from tests.runs.test_queue import wait_for
from workbench.config import load_config
from workbench.runs import spawn
from workbench.runs.files import CHECKPOINT_MARKER
from workbench.runs.queue import RunQueue
from workbench.runs.submission import freeze

pytestmark = pytest.mark.slow

# LoRA with dropout (so the RNG matters), a shuffled dataset over more than one epoch, a checkpoint every step.
RESUMABLE = [
    "train.threads=1",
    "train.per_device_train_batch_size=2",
    "data.cutoff_len=64",
    "data.datasets.0.max_samples=12",
    "method.r=4",
    "method.dropout=0.1",
    "train.max_steps=10",
    "train.save_steps=1",
    "train.save_total_limit=3",
    "train.lr_scheduler_type=linear",
    "train.seed=7",
]
# Final weights of a resumed run against an uninterrupted one: equal up to float32 summation order.
WEIGHT_TOLERANCE = 1e-5


def weights(job) -> dict:
    return load_file(str(job.files.adapter / "adapter_model.safetensors"))


def tensorboard_losses(job) -> list[tuple[int, float]]:
    """The losses TensorBoard shows for the run, step by step as its own reader reads the event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(job.files.tensorboard))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars("train/loss")]


def logged_losses(job) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in job.files.read_metrics() if "loss" in r]


def kill_worker(queue: RunQueue, job) -> None:
    job = queue.get(job.id)
    os.killpg(job.pid, signal.SIGKILL)
    wait_for(queue, job.id, lambda j: j.state == "failed", timeout=30)


def test_a_run_killed_at_random_steps_and_resumed_ends_as_if_never_interrupted(home):
    spawn.ensure_launcher()  # resumes start in about a second, as from the UI
    queue = RunQueue()
    config = freeze(load_config(PRESETS / "sft-lora-identity.yaml", RESUMABLE))

    reference = queue.submit(config)
    reference = wait_for(queue, reference.id, lambda j: j.state in ("finished", "failed"), timeout=600)
    assert reference.state == "finished", reference.error

    job = queue.submit(config)
    kills = sorted(random.Random().sample(range(2, 10), 3))
    for step in kills:
        job = wait_for(queue, job.id, lambda j, s=step: j.active and j.files.read_status().get("step", 0) >= s)
        kill_worker(queue, job)
        assert "ended without reporting why" in queue.get(job.id).error
        queue.resume(job.id)
    job = wait_for(queue, job.id, lambda j: j.state in ("finished", "failed"), timeout=600)
    assert job.state == "finished", job.error

    logged = [r["step"] for r in job.files.read_metrics() if "loss" in r]
    assert logged == list(range(1, 11)), f"killed at {kills}: steps logged {logged}"
    expected = {r["step"]: r["loss"] for r in reference.files.read_metrics() if "loss" in r}
    for record in (r for r in job.files.read_metrics() if "loss" in r):
        assert record["loss"] == pytest.approx(expected[record["step"]], abs=1e-4), (kills, record)
    # TensorBoard shows each step once too: a resumed worker purges what the killed one logged past its checkpoint.
    assert tensorboard_losses(job) == pytest.approx(logged_losses(job), rel=1e-6), kills
    ours, theirs = weights(job), weights(reference)
    assert ours.keys() == theirs.keys()
    worst = max((ours[k] - theirs[k]).abs().max().item() for k in ours)
    assert worst <= WEIGHT_TOLERANCE, f"killed at {kills}: weights differ by up to {worst:.2e}"


def test_a_damaged_newest_checkpoint_is_passed_over_for_the_one_before(home):
    queue = RunQueue()
    config = freeze(load_config(PRESETS / "sft-lora-identity.yaml", [*RESUMABLE, "train.max_steps=6"]))
    job = queue.submit(config)
    job = wait_for(queue, job.id, lambda j: j.active and j.files.read_status().get("step", 0) >= 3)
    queue.cancel(job.id)
    job = wait_for(queue, job.id, lambda j: j.state == "stopped", timeout=120)
    newest = job.files.last_checkpoint()
    assert (newest / CHECKPOINT_MARKER).is_file()
    weights_file = newest / "adapter_model.safetensors"
    with weights_file.open("r+b") as f:  # cut short, as by a crash or a full disk mid-write
        f.truncate(weights_file.stat().st_size // 2)
    previous = job.files.last_checkpoint()
    assert previous is not None and previous != newest
    assert int(previous.name.split("-")[1]) < int(newest.name.split("-")[1])

    queue.resume(job.id)
    job = wait_for(queue, job.id, lambda j: j.state in ("finished", "failed"), timeout=600)
    assert job.state == "finished", job.error
    assert f"resuming from {previous}" in job.files.log.read_text()
    assert [r["step"] for r in job.files.read_metrics() if "loss" in r] == list(range(1, 7))
    # The step after `previous` was logged by the first worker and again after the resume: TensorBoard shows it once.
    assert tensorboard_losses(job) == pytest.approx(logged_losses(job), rel=1e-6)


@contextlib.contextmanager
def small_filesystem(path: Path, megabytes: int):
    """A tmpfs of `megabytes` at `path` (needs root, as in CI); skips where it cannot be mounted."""
    path.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)], check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small filesystem here")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_disk_filling_up_fails_the_run_before_a_checkpoint_it_has_no_room_for(tmp_path, monkeypatch):
    # The data home on a 90 MB filesystem: the run starts, then its checkpoints (~15 MB each with the optimizer
    # state, five kept) fill the disk.
    with small_filesystem(tmp_path / "small", 90) as small:
        monkeypatch.setenv("WORKBENCH_HOME", str(small / "home"))
        queue = RunQueue()
        config = freeze(load_config(PRESETS / "sft-lora-identity.yaml", [*RESUMABLE, "train.save_total_limit=5"]))
        job = queue.submit(config)
        job = wait_for(queue, job.id, lambda j: j.state in ("finished", "failed"), timeout=600)
        assert job.state == "failed"
        assert job.error_category == "disk" and "not enough disk space" in job.error.lower(), job.error
        assert str(job.files.root) in job.error and "free" in job.error and "needs about" in job.error
        # Nothing half-written: every checkpoint left is complete, no temporary file lies about.
        assert all((p / CHECKPOINT_MARKER).is_file() for p in job.files.checkpoints.glob("checkpoint-*"))
        assert job.files.last_checkpoint() is not None
        assert not [p for p in small.rglob("*") if p.name.endswith(".tmp")]
        assert not job.files.adapter.exists()
        # The store still works: the run can be deleted, which frees the space.
        queue.delete(job.id)
        assert queue.list() == []
        time.sleep(0.2)


def test_a_write_that_fails_for_want_of_space_fails_the_run_saying_so(home):
    # The disk fills from elsewhere between the check and the write: here the worker's file-size limit is cut
    # (RLIMIT_FSIZE) after its first checkpoint, so the next optimizer state cannot be written.
    queue = RunQueue()
    job = queue.submit(freeze(load_config(PRESETS / "sft-lora-identity.yaml", RESUMABLE)))
    job = wait_for(queue, job.id, lambda j: j.active and j.files.last_checkpoint() is not None)
    subprocess.run(["prlimit", f"--pid={job.pid}", "--fsize=2000000"], check=True)
    job = wait_for(queue, job.id, lambda j: j.state in ("finished", "failed"), timeout=600)
    assert job.state == "failed" and job.error_category == "disk", job.error
    assert job.error.startswith("Disk full") and str(job.files.root) in job.error
    assert all((p / CHECKPOINT_MARKER).is_file() for p in job.files.checkpoints.glob("checkpoint-*"))
    assert not [p for p in job.files.root.rglob("*") if p.name.endswith(".tmp")]
    queue.resume(job.id)  # with the limit gone (a new worker), it goes on from the last complete checkpoint
    job = wait_for(queue, job.id, lambda j: j.state in ("finished", "failed"), timeout=600)
    assert job.state == "finished", job.error
