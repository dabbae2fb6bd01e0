"""Experiment tracking as a user meets it: a run started from the command line logs its losses to TensorBoard (by
default, in its folder) and to Trackio (offline, in Trackio's folder), the Runs tab says how to open them, and a
tracker that is not installed or not set up is refused before Start, saying what to install or set."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PRESETS, REPO
from workbench.runs.store import JobStore

pytestmark = pytest.mark.slow

TINY_RUN = [
    "train.max_steps=3",
    "train.threads=1",
    "train.per_device_train_batch_size=2",
    "train.save_steps=3",
    "data.cutoff_len=64",
    "data.datasets.0.max_samples=6",
]


def train(home: Path, *overrides: str, **env: str) -> subprocess.CompletedProcess:
    """`python -m workbench train` on the identity preset, as typed in a shell with `env` added."""
    words = [arg for item in overrides for arg in ("--set", item)]
    return subprocess.run(
        [sys.executable, "-m", "workbench", "train", str(PRESETS / "sft-lora-identity.yaml"), *words],
        cwd=REPO,
        env={**os.environ, "WORKBENCH_HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, tiny_model):
    """One finished run of the tiny model, reporting to TensorBoard and Trackio (into a folder of its own)."""
    pytest.importorskip("trackio")  # requirements-dev.txt installs it; without it, the refusal below is tested
    home = tmp_path_factory.mktemp("tracked-home")
    trackio_dir = tmp_path_factory.mktemp("trackio")
    result = train(
        home,
        *TINY_RUN,
        f"model.name_or_path={tiny_model}",
        "name=tiny",
        "train.report_to=[tensorboard, trackio]",
        TRACKIO_DIR=str(trackio_dir),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    os.environ["WORKBENCH_HOME"] = str(home)
    try:
        (job,) = JobStore(home / "jobs.sqlite").list()
    finally:
        del os.environ["WORKBENCH_HOME"]
    assert job.state == "finished", job.error
    return job, trackio_dir


def logged_losses(job) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in job.files.read_metrics() if r.get("loss") is not None}


def test_tensorboard_event_files_in_the_run_folder_hold_its_losses(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    job, _ = tracked
    events = EventAccumulator(str(job.files.root / "tensorboard"))
    events.Reload()
    tensorboard = {e.step: e.value for e in events.Scalars("train/loss")}
    assert tensorboard == pytest.approx(logged_losses(job), rel=1e-6)  # TensorBoard keeps float32
    assert sorted(tensorboard) == [1, 2, 3]


def test_trackio_logs_the_losses_offline_into_its_own_folder(tracked):
    job, trackio_dir = tracked
    # Trackio reads its folder when it is imported: in a fresh interpreter, as `trackio show` would.
    code = (
        "import json; from trackio.sqlite_storage import SQLiteStorage as S; "
        "(run,) = S.get_runs('workbench'); rows = S.get_logs('workbench', run); "
        "print(json.dumps([run, [[r['train/global_step'], r.get('train/loss')] for r in rows]]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "TRACKIO_DIR": str(trackio_dir)}, capture_output=True,
        text=True, timeout=120, check=True,
    )  # fmt: skip
    run, rows = json.loads(out.stdout.splitlines()[-1])
    assert run == f"{job.id} · tiny"  # the run id, then its name
    assert {step: loss for step, loss in rows if loss is not None} == pytest.approx(logged_losses(job))


def test_the_runs_tab_says_how_to_open_each_tracker(tracked, monkeypatch):
    from workbench.ui import runs_tab

    job, trackio_dir = tracked
    text = runs_tab._progress(job)
    assert f"`tensorboard --logdir {job.files.root / 'tensorboard'}`" in text
    assert f"`TRACKIO_DIR={trackio_dir} trackio show --project workbench`" in text


@pytest.mark.parametrize("tracker", ["wandb", "mlflow"])
def test_the_cli_refuses_a_tracker_that_is_not_installed_or_not_set_up(tracker, home, tmp_path):
    # W&B and MLflow are not requirements: here they are missing, or W&B is there without a key.
    installed = importlib.util.find_spec(tracker) is not None
    if installed and tracker == "mlflow":
        pytest.skip("mlflow is installed: it logs to its local default, there is nothing to refuse")
    env = {"WANDB_API_KEY": "", "WANDB_MODE": "", "HOME": str(tmp_path)}  # no key, no `wandb login`
    result = train(home, *TINY_RUN, f"train.report_to={tracker}", **env)
    assert result.returncode == 2
    if installed:
        assert "train.report_to: W&B needs an API key: set WANDB_API_KEY" in result.stderr, result.stderr
    else:
        assert f"train.report_to: {'W&B' if tracker == 'wandb' else 'MLflow'} needs `{tracker}`" in result.stderr
        assert f"pip install {tracker}" in result.stderr
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


def test_the_worker_checks_again_with_its_submitters_environment(home, tiny_model, tmp_path):
    # A run queued past the check (resumed later, or set up since): the worker refuses it before training.
    from tests.runs.test_queue import wait_for
    from workbench.config import load_config
    from workbench.runs.queue import RunQueue
    from workbench.runs.submission import freeze

    config = load_config(
        PRESETS / "sft-lora-identity.yaml", [*TINY_RUN, f"model.name_or_path={tiny_model}", "train.report_to=wandb"]
    )
    queue = RunQueue()
    env = {**os.environ, "WANDB_API_KEY": "", "WANDB_MODE": "", "HOME": str(tmp_path)}
    job = queue.submit(freeze(config), env=env)
    job = wait_for(queue, job.id, lambda j: j.state in ("finished", "failed"), timeout=300)
    assert job.state == "failed" and "train.report_to: W&B needs" in job.error
    assert job.files.read_metrics() == []
