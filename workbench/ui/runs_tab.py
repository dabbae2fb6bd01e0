"""The Runs tab: every run from the job store, and for the chosen one a live loss chart, progress, log and
Stop / Resume / Delete. It only reads: a one-second timer re-reads the database and the run folder, so a
reloaded page or a restarted app finds every run where it is."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr
import pandas as pd

from workbench.jobs import Job, JobError, JobStore

REFRESH_SECONDS = 1.0
# Metric series drawn on the loss chart, and the ones on the learning-rate chart.
LOSS_SERIES = ("loss", "eval_loss")


def run_choices() -> list[tuple[str, str]]:
    return [(_label(job), job.id) for job in JobStore().list()]


def _label(job: Job) -> str:
    # Names repeat (every run of a preset shares one): the id keeps runs apart.
    return f"{job.id} · {job.name or job.method} · {job.state}"


def build() -> dict[str, Any]:
    table = gr.Dataframe(label="Runs", interactive=False, wrap=True, elem_id="runs-table")
    with gr.Row():
        selector = gr.Dropdown(run_choices(), label="Run", elem_id="runs-selector", scale=3)
        stop = gr.Button("Stop", elem_id="runs-stop", scale=1)
        resume = gr.Button("Resume", elem_id="runs-resume", scale=1)
        delete = gr.Button("Delete", variant="stop", elem_id="runs-delete", scale=1)
    progress = gr.Markdown(elem_id="runs-progress")
    with gr.Row():
        loss_plot = gr.LinePlot(x="step", y="value", color="series", title="Loss", height=300, elem_id="runs-loss")
        lr_plot = gr.LinePlot(x="step", y="learning_rate", title="Learning rate", height=300, elem_id="runs-lr")
    log = gr.Code(label="Log (last lines)", language=None, max_lines=20, elem_id="runs-log")
    message = gr.Markdown(elem_id="runs-message")
    timer = gr.Timer(REFRESH_SECONDS)
    return {
        "table": table,
        "selector": selector,
        "stop": stop,
        "resume": resume,
        "delete": delete,
        "progress": progress,
        "loss_plot": loss_plot,
        "lr_plot": lr_plot,
        "log": log,
        "message": message,
        "timer": timer,
    }


def wire(tab: dict[str, Any]) -> None:
    outputs = [tab["table"], tab["selector"], tab["progress"], tab["loss_plot"], tab["lr_plot"], tab["log"]]
    tab["timer"].tick(refresh, tab["selector"], outputs, show_progress="hidden")
    tab["selector"].change(refresh, tab["selector"], outputs, show_progress="hidden")
    for button, action in ((tab["stop"], "cancel"), (tab["resume"], "resume"), (tab["delete"], "delete")):
        button.click(_act(action), tab["selector"], tab["message"])


def _act(action: str):
    def run(job_id: str | None) -> str:
        if not job_id:
            return "Choose a run first."
        try:
            getattr(JobStore(), action)(job_id)
        except JobError as err:
            return f"**{err}**"
        return {"cancel": "Stopping: saving a checkpoint…", "resume": "Resumed.", "delete": "Deleted."}[action]

    return run


def refresh(job_id: str | None):
    store = JobStore()
    jobs = store.reconcile()
    choices = [(_label(job), job.id) for job in jobs]
    selected = job_id if any(job.id == job_id for job in jobs) else None
    table = pd.DataFrame([_row(job) for job in jobs], columns=["id", "name", "state", "method", "model", "progress"])
    if selected is None:
        return table, gr.update(choices=choices, value=None), "", None, None, ""
    job = store.get(selected)
    loss, lr = _charts(job)
    return table, gr.update(choices=choices, value=selected), _progress(job), loss, lr, job.files.log_tail(30)


def _row(job: Job) -> dict[str, Any]:
    status = job.files.read_status()
    step, total = status.get("step", 0), status.get("max_steps")
    return {
        "id": job.id,
        "name": job.name or "",
        "state": job.state,
        "method": job.method,
        "model": job.model,
        "progress": f"{step}/{total}" if total else "",
    }


def _charts(job: Job) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    records = job.files.read_metrics()
    points = [
        {"step": r["step"], "value": r[key], "series": key}
        for r in records
        for key in LOSS_SERIES
        if r.get(key) is not None
    ]
    rates = [{"step": r["step"], "learning_rate": r["learning_rate"]} for r in records if "learning_rate" in r]
    return (pd.DataFrame(points) if points else None), (pd.DataFrame(rates) if rates else None)


def _progress(job: Job) -> str:
    status = job.files.read_status()
    step, total = status.get("step", 0), status.get("max_steps") or 0
    share = step / total if total else 0.0
    bar = "█" * int(share * 30) + "░" * (30 - int(share * 30))
    parts = [f"**{job.state}**", f"`{bar}` {step}/{total or '?'} steps ({share:.0%})"]
    if job.state == "running" or status.get("state") == "running":
        if status.get("eta_seconds") is not None:
            parts.append(f"ETA {_duration(status['eta_seconds'])}")
        if status.get("tokens_per_second"):
            parts.append(f"{status['tokens_per_second']:.0f} tokens/s")
    if job.state in ("finished", "failed", "stopped") and job.finished_at and job.started_at:
        parts.append(f"took {_duration(job.finished_at - job.started_at)}")
    if job.error:
        parts.append(f"\n\n**Error:** {job.error}")
    if job.resumable:
        parts.append("\n\nResume continues from the last checkpoint.")
    if job.state == "finished":
        parts.append(f"\n\nAdapter: `{job.files.adapter}`")
    return " · ".join(parts[:2]) + (" · " + " · ".join(parts[2:]) if parts[2:] else "")


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return time.strftime("%H:%M:%S" if seconds >= 3600 else "%M:%S", time.gmtime(seconds))
