"""Experiment tracking (`train.report_to`): which trackers get a run's metrics besides its metrics.jsonl, whether
they can, and where each keeps its record.

- TensorBoard (a dependency): event files in the run folder, `runs/<id>/tensorboard/`.
- Trackio: local by default, into its own folder (`TRACKIO_DIR`, else `~/.cache/huggingface/trackio`); it needs
  no network and no account. `TRACKIO_SPACE_ID` or `TRACKIO_SERVER_URL` send it elsewhere, as Trackio does.
- W&B: needs `wandb` and an API key (`WANDB_API_KEY`, or `wandb login`'s entry in ~/.netrc), or
  `WANDB_MODE=offline`, which logs into the run folder for a later `wandb sync`.
- MLflow: needs `mlflow`; `MLFLOW_TRACKING_URI` where set, else a SQLite store in the data directory (MLflow's
  own default is a file in the working directory, which for a worker is wherever it happened to start).

The worker runs with the environment of whoever submitted the run (the UI's or the command line's), so the
check before Start and the worker's read the same variables. Project: "workbench"; run name: the run id and
its name. Light (no torch) but for `resume_tensorboard`, which the worker calls.
"""

from __future__ import annotations

import importlib.util
import netrc
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from workbench import home
from workbench.config import Tracker
from workbench.runs.files import RunFiles

PROJECT = "workbench"
# Each tracker by the name people know it by; its Python package has the name it has in report_to.
TITLES: dict[Tracker, str] = {"tensorboard": "TensorBoard", "trackio": "Trackio", "wandb": "W&B", "mlflow": "MLflow"}
_OFFLINE_WANDB = ("offline", "dryrun", "disabled")


def problems(report_to: list[str], env: Mapping[str, str]) -> list[str]:
    """What keeps the chosen trackers from working in a worker with environment `env`, each saying what to
    install or set; empty when nothing does."""
    found = []
    for tracker in report_to:
        title = TITLES[tracker]
        if importlib.util.find_spec(tracker) is None:
            then = ", then set WANDB_API_KEY (or WANDB_MODE=offline)" if tracker == "wandb" else ""
            found.append(
                f"train.report_to: {title} needs `{tracker}`, which is not installed: pip install {tracker}{then}"
            )
        elif tracker == "wandb" and not _wandb_ready(env):
            found.append(
                "train.report_to: W&B needs an API key: set WANDB_API_KEY (or run `wandb login`) where the workbench "
                "or the command starts, or set WANDB_MODE=offline to log into the run folder"
            )
        elif tracker == "mlflow" and env.get("DISABLE_MLFLOW_INTEGRATION", "").upper() == "TRUE":
            found.append("train.report_to: MLflow is switched off by DISABLE_MLFLOW_INTEGRATION=TRUE: unset it")
    return found


def _wandb_ready(env: Mapping[str, str]) -> bool:
    if env.get("WANDB_API_KEY") or env.get("WANDB_MODE", "").lower() in _OFFLINE_WANDB:
        return True
    # `wandb login` keeps the key in ~/.netrc, under the host of the W&B server.
    host = urlsplit(env.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    path = env.get("NETRC") or str(Path(env.get("HOME") or Path.home()) / ".netrc")
    try:
        return netrc.netrc(path).authenticators(host or "") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def run_name(run_id: str, name: str | None) -> str:
    """The run's name in every tracker: its id, which is unique, then the label people gave it."""
    return f"{run_id} · {name}" if name else run_id


def trainer_arguments(run_name: str) -> dict[str, str]:
    """The training arguments that name the run to the trackers (W&B and MLflow take the project from the
    environment, Trackio from these)."""
    return {"run_name": run_name, "project": PROJECT}


def mlflow_default_uri() -> str:
    return f"sqlite:///{home.home() / 'mlflow.db'}"


def environment(report_to: list[str], files: RunFiles, env: Mapping[str, str]) -> dict[str, str]:
    """The variables the worker sets for the chosen trackers (the libraries read them): each run's TensorBoard
    folder, and defaults for what `env` leaves unset (project, where local records go, the W&B run to resume)."""
    found: dict[str, str] = {}
    if "tensorboard" in report_to:
        found["TENSORBOARD_LOGGING_DIR"] = str(files.tensorboard)  # always the run's own folder
    if "wandb" in report_to:
        found["WANDB_PROJECT"] = env.get("WANDB_PROJECT") or PROJECT
        found["WANDB_DIR"] = env.get("WANDB_DIR") or str(files.root)
        # A resumed run goes on in the same W&B run rather than starting a second one of the same name.
        found["WANDB_RUN_ID"] = env.get("WANDB_RUN_ID") or files.root.name
        found["WANDB_RESUME"] = env.get("WANDB_RESUME") or "allow"
    if "mlflow" in report_to:
        found["MLFLOW_EXPERIMENT_NAME"] = env.get("MLFLOW_EXPERIMENT_NAME") or PROJECT
        found["MLFLOW_TRACKING_URI"] = env.get("MLFLOW_TRACKING_URI") or mlflow_default_uri()
    return found


def destinations(report_to: list[str], files: RunFiles, env: Mapping[str, str], name: str) -> list[dict[str, str]]:
    """Where each chosen tracker keeps this run and how to open it: {"tracker", and "command" (a shell command or
    an address) or "text"}. `env` is the worker's, with `environment(...)` applied; no secret is included."""
    found = []
    for tracker in report_to:
        title = TITLES[tracker]
        if tracker == "tensorboard":
            found.append({"tracker": title, "command": f"tensorboard --logdir {shlex.quote(str(files.tensorboard))}"})
        elif tracker == "trackio":
            found.append({"tracker": title, **_trackio_destination(env)})
        elif tracker == "wandb":
            if env.get("WANDB_MODE", "").lower() in _OFFLINE_WANDB:
                offline = shlex.quote(str(Path(env["WANDB_DIR"]) / "wandb"))
                found.append({"tracker": title, "command": f"wandb sync {offline}/offline-run-*"})
            else:
                found.append({"tracker": title, "text": f"project {env['WANDB_PROJECT']}, run {name}"})
        elif tracker == "mlflow":
            uri = env["MLFLOW_TRACKING_URI"]
            experiment = env["MLFLOW_EXPERIMENT_NAME"]
            if uri.startswith(("http://", "https://")):
                found.append({"tracker": title, "text": f"{_without_secrets(uri)}, experiment {experiment}"})
            else:
                found.append({"tracker": title, "command": f"mlflow ui --backend-store-uri {shlex.quote(uri)}"})
    return found


def _trackio_destination(env: Mapping[str, str]) -> dict[str, str]:
    if env.get("TRACKIO_SPACE_ID"):
        return {"text": f"the Space {env['TRACKIO_SPACE_ID']}, project {PROJECT}"}
    if env.get("TRACKIO_SERVER_URL"):
        return {"text": f"{_without_secrets(env['TRACKIO_SERVER_URL'])}, project {PROJECT}"}
    folder = f"TRACKIO_DIR={shlex.quote(env['TRACKIO_DIR'])} " if env.get("TRACKIO_DIR") else ""
    return {"command": f"{folder}trackio show --project {PROJECT}"}


def _without_secrets(url: str) -> str:
    # Tracking addresses may carry a password (user:pass@host) or a token in the query (Trackio's write_token).
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def prepare(report_to: list[str], env: Mapping[str, str]) -> None:
    """What a tracker needs done in the worker before the trainer starts (`env`: the worker's, with
    `environment(...)` applied): MLflow's local default store gets the experiment, its artifacts beside the store
    (MLflow would put them in the working directory of whichever worker first used it)."""
    if "mlflow" not in report_to or env.get("MLFLOW_TRACKING_URI") != mlflow_default_uri():
        return
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    name = env["MLFLOW_EXPERIMENT_NAME"]
    if client.get_experiment_by_name(name) is None:  # one run trains at a time: no other worker creates it now
        client.create_experiment(name, artifact_location=(home.home() / "mlflow-artifacts").as_uri())


def resume_tensorboard(trainer: Any, step: int) -> None:
    """A run resumed from checkpoint `step` logs steps after it again: its TensorBoard writer drops the events
    the interrupted worker logged past the checkpoint (TensorBoard's purge), so each step shows once."""
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback) and callback.tb_writer is None:
            callback.tb_writer = SummaryWriter(log_dir=callback.logging_dir, purge_step=step + 1)
