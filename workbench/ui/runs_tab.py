"""The Runs tab: every run from the job store, and for the chosen one a live loss chart, progress, log and
Stop / Resume / Delete. It only reads: a one-second timer re-reads the database and the run folder, so a
reloaded page or a restarted app finds every run where it is. What it shows is in the page's language
(`workbench/ui/i18n.py`), a run's error as the worker recorded it included."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr
import pandas as pd

from workbench import stages
from workbench.data.mixing import describe as describe_mix
from workbench.evaluation import report as reports
from workbench.runs.queue import RunQueue
from workbench.runs.store import Job, JobError, JobStore
from workbench.runs.summary import RunSummary, summarize
from workbench.ui import evaluation_view, i18n
from workbench.ui.i18n import EN, Translator, _

REFRESH_SECONDS = 1.0
# Metric series drawn on the loss chart, and the ones on the learning-rate chart.
LOSS_SERIES = ("loss", "eval_loss")


def run_choices(t: Translator = EN) -> list[tuple[str, str]]:
    return [(_label(job, t), job.id) for job in JobStore().list()]


def _label(job: Job, t: Translator = EN) -> str:
    # Names repeat (every run of a preset shares one): the id keeps runs apart.
    return f"{job.id} · {job.name or job.method} · {t(job.state)}"


def _short_label(job: Job) -> str:
    return f"{job.id} · {job.name or job.method}"


def build() -> dict[str, Any]:
    table = gr.Dataframe(label=_("Runs"), interactive=False, wrap=True, elem_id="runs-table")
    with gr.Row():
        # No runs at build time: the timer's first tick fills the pickers, so the page served before login
        # names none (and a reloaded page shows the runs there are now, not those at start-up).
        selector = gr.Dropdown([], label=_("Run"), elem_id="runs-selector", scale=3)
        stop = gr.Button(_("Stop"), elem_id="runs-stop", scale=1)
        resume = gr.Button(_("Resume"), elem_id="runs-resume", scale=1)
        delete = gr.Button(_("Delete"), variant="stop", elem_id="runs-delete", scale=1)
    progress = gr.Markdown(elem_id="runs-progress")
    with gr.Row():
        loss_plot = gr.LinePlot(x="step", y="value", color="series", title=_("Loss"), height=300, elem_id="runs-loss")
        lr_plot = gr.LinePlot(x="step", y="learning_rate", title=_("Learning rate"), height=300, elem_id="runs-lr")
    stage_plot = gr.LinePlot(
        x="step",
        y="value",
        color="series",
        title=_("Stage metrics"),
        height=300,
        elem_id="runs-stage-metrics",
        visible=False,  # shown for runs that log metrics of their own (DPO's rewards, SFT's KL), not for plain SFT
    )
    log = gr.Code(label=_("Log (last lines)"), language=None, max_lines=20, elem_id="runs-log")
    message = gr.Markdown(elem_id="runs-message")
    with gr.Accordion(_("Compare runs"), open=True):
        compare = gr.Dropdown(
            [],
            multiselect=True,
            label=_("Runs to compare"),
            elem_id="runs-compare",
            max_choices=12,
        )
        compare_plot = gr.LinePlot(
            x="step", y="loss", color="run", title=_("Training loss"), height=320, elem_id="runs-compare-loss"
        )
        compare_table = gr.Dataframe(
            label=_("Key figures"), interactive=False, wrap=True, elem_id="runs-compare-table"
        )
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
        "stage_plot": stage_plot,
        "log": log,
        "message": message,
        "compare": compare,
        "compare_plot": compare_plot,
        "compare_table": compare_table,
        "timer": timer,
    }


def wire(tab: dict[str, Any], language) -> None:
    """The timer and the buttons; `language`, the page's, is what they speak (the timer's next tick follows it)."""
    known = gr.State([])  # the run ids the compare picker offers; its choices change only when runs do
    outputs = [tab["table"], tab["selector"], tab["progress"], tab["loss_plot"], tab["lr_plot"], tab["log"]]
    outputs += [tab["stage_plot"]]
    outputs += [tab["compare"], known]
    inputs = [tab["selector"], known, language]
    tab["timer"].tick(refresh, inputs, outputs, show_progress="hidden", api_visibility="private")
    tab["selector"].change(refresh, inputs, outputs, show_progress="hidden", api_visibility="private")
    for button, action in ((tab["stop"], "cancel"), (tab["resume"], "resume"), (tab["delete"], "delete")):
        button.click(_act(action), [tab["selector"], language], tab["message"], api_visibility="private")
    compared = [tab["compare_plot"], tab["compare_table"]]
    compare_inputs = [tab["compare"], language]
    tab["compare"].change(compare, compare_inputs, compared, show_progress="hidden", api_visibility="private")
    tab["timer"].tick(compare, compare_inputs, compared, show_progress="hidden", api_visibility="private")


ACTED = {"cancel": "Stopping: saving a checkpoint…", "resume": "Resumed.", "delete": "Deleted."}


def _act(action: str):
    def run(job_id: str | None, language: str | None = None) -> str:
        t = i18n.translator(language)
        if not job_id:
            return t("Choose a run first.")
        try:
            getattr(RunQueue(), action)(job_id)
        except JobError as err:
            return f"**{t.error(err)}**"
        return t(ACTED[action])

    return run


def refresh(job_id: str | None, known: list[str], language: str | None = None):
    t = i18n.translator(language)
    store = RunQueue()
    jobs = store.reconcile()
    choices = [(_label(job, t), job.id) for job in jobs]
    ids = [job.id for job in jobs]
    # Re-offering the same choices every second would close the picker while someone is choosing.
    compare_choices = gr.update(choices=[(_short_label(job), job.id) for job in jobs]) if ids != known else gr.update()
    selected = job_id if job_id in ids else None
    table = pd.DataFrame([_row(job, t) for job in jobs], columns=TABLE_COLUMNS).rename(columns=t)
    if selected is None:
        hidden = gr.update(value=None, visible=False)
        return table, gr.update(choices=choices, value=None), "", None, None, "", hidden, compare_choices, ids
    job = store.get(selected)
    loss, lr, stage_metrics = _charts(job, t)
    log = job.files.log_tail(30)
    selector = gr.update(choices=choices, value=selected)
    if job.stage in stages.names():
        title = t("{stage} metrics", stage=t(stages.get(job.stage).title))
    else:
        title = t("Stage metrics")
    axes = {"x_title": t("step"), "y_title": t("value"), "color_title": t("series")}
    loss_chart = gr.update(value=loss, **axes)
    lr_chart = gr.update(value=lr, x_title=t("step"), y_title=t("learning rate"))
    stage_chart = gr.update(value=stage_metrics, visible=stage_metrics is not None, title=title, **axes)
    progress = _progress(job, t) + _data_line(job, t)
    return table, selector, progress, loss_chart, lr_chart, log, stage_chart, compare_choices, ids


COMPARE_COLUMNS = [
    "run", "method", "state", "steps", "trainable params", "share", "peak memory", "s/step", "final loss",
    "eval loss", "best step", "saved weights", "eval chrF", "eval ROUGE-L", "eval contains answer",
    "probe retention",
]  # fmt: skip
# The evaluation's headline figures (evaluation/report.headline) shown in Compare runs, each with its change from
# the base where there is one.
EVAL_COLUMNS = ("eval chrF", "eval ROUGE-L", "eval contains answer", "probe retention")


def compare(job_ids: list[str] | None, language: str | None = None):
    """The chosen runs' loss curves on one chart and their key figures side by side (in the page's `language`)."""
    t = i18n.translator(language)
    jobs = {job.id: job for job in JobStore().list()}
    chosen = [jobs[i] for i in job_ids or [] if i in jobs]
    points, rows = [], []
    for job in chosen:
        label = _short_label(job)
        points += [{"step": r["step"], "loss": r["loss"], "run": label} for r in job.files.read_metrics()
                   if r.get("loss") is not None]  # fmt: skip
        rows.append(_figures(label, summarize(job.files, job.state), t))
    plot = gr.update(
        value=pd.DataFrame(points) if points else None, x_title=t("step"), y_title=t("loss"), color_title=t("run")
    )
    return plot, pd.DataFrame(rows, columns=COMPARE_COLUMNS).rename(columns=t)


def _figures(label: str, s: RunSummary, t: Translator = EN) -> dict[str, Any]:
    def number(value: float | None, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    return {
        "run": label,
        "method": s.method,
        "state": t(s.state),
        "steps": s.steps,
        "trainable params": number(s.trainable_params, ","),
        "share": number(s.share, ".3%"),
        "peak memory": "" if s.peak_memory_mb is None else f"{s.peak_memory_mb:,.0f} MiB",
        "s/step": number(s.seconds_per_step, ".2f"),
        "final loss": number(s.final_loss, ".4f"),
        "eval loss": number(s.eval_loss, ".4f"),
        "best step": "" if s.best_step is None else s.best_step,
        "saved weights": "" if s.weights_bytes is None else f"{s.weights_bytes / 2**20:,.2f} MiB",
        **{column: _headline(s.evaluation, column) for column in EVAL_COLUMNS},
    }


def _headline(figures: dict[str, float], name: str) -> str:
    """A headline figure of the run's evaluation, its change from the base beside it: "48.2 (+5.1)"."""
    if name not in figures:
        return ""
    change = figures.get(f"{name} change")
    return f"{figures[name]:.1f}" + ("" if change is None else f" ({change:+.1f})")


TABLE_COLUMNS = ["id", "name", "state", "stage", "method", "model", "started from", "progress"]


def _row(job: Job, t: Translator = EN) -> dict[str, Any]:
    status = job.files.read_status()
    step, total = status.get("step", 0), status.get("max_steps")
    return {
        "id": job.id,
        "name": job.name or "",
        "state": t(job.state),
        "stage": job.stage,
        "method": job.method,
        "model": job.model,
        "started from": job.parent or "",
        "progress": f"{step}/{total}" if total else "",
    }


def _charts(job: Job, t: Translator = EN) -> tuple[pd.DataFrame | None, pd.DataFrame | None, pd.DataFrame | None]:
    """Loss (and eval loss), learning rate, and the stage's own metrics (DPO's rewards, ...: named as the trainer
    logs them) by step."""
    records = job.files.read_metrics()
    series = stages.get(job.stage).metrics if job.stage in stages.names() else ()
    stage_points = [
        {"step": r["step"], "value": r[key], "series": key}
        for r in records
        for key in series
        if r.get(key) is not None
    ]
    points = [
        {"step": r["step"], "value": r[key], "series": t(key)}
        for r in records
        for key in LOSS_SERIES
        if r.get(key) is not None
    ]
    rates = [{"step": r["step"], "learning_rate": r["learning_rate"]} for r in records if "learning_rate" in r]
    return (
        pd.DataFrame(points) if points else None,
        pd.DataFrame(rates) if rates else None,
        pd.DataFrame(stage_points) if stage_points else None,
    )


def _progress(job: Job, t: Translator = EN) -> str:
    status = job.files.read_status()
    step, total = status.get("step", 0), status.get("max_steps") or 0
    share = step / total if total else 0.0
    bar = "█" * int(share * 30) + "░" * (30 - int(share * 30))
    steps = t("{step}/{total} steps ({share:.0%})", step=step, total=total or "?", share=share)
    parts = [f"**{t(job.state)}**", f"`{bar}` {steps}"]
    replay = status.get("rehearsal") or {}
    if job.state == "running" and replay.get("done", 0) < replay.get("rows", 0):
        parts.append(t("the base model is answering the replay prompts: {done}/{rows}", **replay))
    if job.state == "running":
        if status.get("eta_seconds") is not None:
            parts.append(t("ETA {time}", time=_duration(status["eta_seconds"])))
        if status.get("tokens_per_second"):
            parts.append(t("{speed:.0f} tokens/s", speed=status["tokens_per_second"]))
    if job.state in ("finished", "failed", "stopped") and job.finished_at and job.started_at:
        parts.append(t("took {time}", time=_duration(job.finished_at - job.started_at)))
    if job.error:
        parts.append("\n\n" + t("**Error:** {problem}", problem=t.message(job.error)))
    if job.resumable:
        parts.append("\n\n" + t("Resume continues from the last checkpoint."))
    if job.parent:
        parts.append("\n\n" + t("Started from run `{run}`", run=job.parent))
    if job.state == "finished":
        parts.append("\n\n" + t("Adapter: `{path}`", path=job.files.adapter))
    parts += _best(status, t)
    text = " · ".join(parts[:2]) + (" · " + " · ".join(parts[2:]) if parts[2:] else "")
    warning = evaluation_view.forgetting(reports.read(job.files.evaluation), t) if job.state == "finished" else ""
    return text + _tracking(status.get("tracking") or [], t) + ("\n\n" + warning if warning else "")


def _best(status: dict[str, Any], t: Translator) -> list[str]:
    """Which step's checkpoint is the run's result, when keep_best or early stopping chose one."""
    if status.get("best_step") is None:
        return []
    metric = status.get("best_metric") or {}
    ((name, value),) = metric.items() if len(metric) == 1 else ((None, None),)
    if isinstance(value, int | float):
        # eval_loss has a name in the page's language; another metric keeps the name the trainer logs it by.
        metric = i18n.catalogue(t.language).get(name, name)
        text = t("The result is the best checkpoint: step {step} ({metric} {value:.4f})", step=status["best_step"],
                 metric=metric, value=value)  # fmt: skip
    else:
        text = t("The result is the best checkpoint: step {step}", step=status["best_step"])
    if status.get("stopped_early"):
        text += t("; training stopped early at step {step}", step=status.get("step", "?"))
    return ["\n\n" + text]


def _tracking(destinations: list[dict[str, str]], t: Translator = EN) -> str:
    """Where the experiment trackers keep the run, as the worker recorded it: a command to open each, or where."""
    lines = [
        f"- **{d.get('tracker', '?')}**: "
        + (f"`{d['command']}`" if d.get("command") else t.message(d.get("text", "")))
        for d in destinations
        if isinstance(d, dict)
    ]
    return "\n\n" + t("Tracked in:") + "\n" + "\n".join(lines) if lines else ""


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return time.strftime("%H:%M:%S" if seconds >= 3600 else "%M:%S", time.gmtime(seconds))


def _data_line(job: Job, t: Translator) -> str:
    """What the run trains on, as the worker drew it: each dataset's share of the mix and the rows it gave."""
    parts = (job.files.read_status().get("data_stats") or {}).get("mix")
    if not parts or not isinstance(parts, list):
        return ""
    mixed = any(part.get("share") is not None for part in parts if isinstance(part, dict))
    try:
        return "\n\n" + t("Mix: {parts}" if mixed else "Data: {parts}", parts=describe_mix(parts, t))
    except (KeyError, TypeError, ValueError):  # a status written by another version: leave it out
        return ""
