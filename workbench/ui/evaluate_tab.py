"""The Evaluate tab: a finished run's replies against its base model's on a test set, and the forgetting probe.

Start runs `python -m workbench eval` in a process of its own (`workbench.evaluation.launch`): the UI loads no model
and holds no event open. A one-second timer reads RUN/eval/ (process.json, log.txt, report.json) and shows where the
evaluation stands and, once report.json is there, what it found; a reloaded page or a restarted app finds the same.
What it says is in the page's language (`workbench/ui/i18n.py`)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr

from workbench import home
from workbench.errors import WorkbenchError
from workbench.evaluation import launch
from workbench.evaluation import report as reports
from workbench.runs.store import JobStore
from workbench.ui import data_tab, evaluation_view, i18n
from workbench.ui.chat_tab import adapter_choices
from workbench.ui.i18n import EN, Translator, _

REFRESH_SECONDS = 1.0
# What to ask besides a dataset file: the run's own held-out sets (`eval --split`).
SPLITS = {"test": "the run's test set", "validation": "the run's validation datasets"}
STORED = "stored"  # datasets the workbench copied for runs (the data store), by "stored/<hash>/<name>"
# A first look in a few minutes on two CPU cores (128-token replies of both models, lm-eval loading each model);
# the whole probe (273 questions) takes ~5 minutes there.
DEFAULT_LIMIT, DEFAULT_PROBE_LIMIT = 20, 32
_starting = threading.Lock()


def build() -> dict[str, Any]:
    with gr.Row():
        # Choices come on page load (`runs`): the page served before login names no run.
        run = gr.Dropdown([], label=_("Finished run"), elem_id="evaluate-run", scale=3)
        refresh = gr.Button(_("↻ runs"), scale=0)
    gr.Markdown(
        _(
            "The tuned model and its base (the adapter switched off) answer the same prompts, greedily; their "
            "replies are scored against the reference: BLEU, chrF, ROUGE-L, exact match, contains-answer and reply "
            "length. The forgetting probe asks general-knowledge questions through lm-evaluation-harness: "
            "retention is the share of the answers the base gets right that the tuned model still gets right. "
            "Everything is saved in the run's `eval/` folder."
        )
    )
    with gr.Row():
        source = gr.Dropdown(
            [(_(label), key) for key, label in SPLITS.items()],
            value="test",
            label=_("Examples from"),
            info=_("A dataset file is read in any layout the Data tab reads"),
            elem_id="evaluate-source",
            scale=2,
        )
        limit = gr.Number(
            DEFAULT_LIMIT, precision=0, minimum=1, label=_("Examples (at most)"), elem_id="evaluate-limit", scale=1
        )
        probe = gr.Checkbox(True, label=_("Forgetting probe"), elem_id="evaluate-probe", scale=1)
        probe_limit = gr.Number(
            DEFAULT_PROBE_LIMIT,
            precision=0,
            minimum=0,
            label=_("Probe questions (0: all)"),
            elem_id="evaluate-probe-limit",
            scale=1,
        )
    start = gr.Button(_("Start evaluation"), variant="primary", elem_id="evaluate-start")
    message = gr.Markdown(elem_id="evaluate-message")
    status = gr.Markdown(elem_id="evaluate-status")
    log = gr.Code(label=_("Log (last lines)"), language=None, max_lines=12, elem_id="evaluate-log", visible=False)
    warning = gr.Markdown(elem_id="evaluate-warning")
    with gr.Row():
        metrics = gr.Dataframe(label=_("Base vs tuned"), interactive=False, elem_id="evaluate-metrics", scale=1)
        chart = gr.Image(
            label=_("Chart"), type="pil", interactive=False, show_label=False, elem_id="evaluate-chart", scale=1
        )
    probe_text = gr.Markdown(elem_id="evaluate-probe-line")
    examples = gr.Dataframe(
        label=_("Examples, the largest change first"),
        interactive=False,
        wrap=True,
        # The texts share most of the width; the five scores are short numbers.
        column_widths=["16%", "17%", "17%", "17%", "6%", "6%", "7%", "7%", "7%"],
        elem_id="evaluate-examples",
    )
    shown = gr.State("")  # which report (run, time, language) the results show: the timer redraws only a new one
    timer = gr.Timer(REFRESH_SECONDS)
    return locals()


RESULTS = ("status", "log", "warning", "metrics", "chart", "probe_text", "examples", "shown")


def wire(tab: dict[str, Any], language) -> None:
    """The tab's events; `language` is the page's, which what they say follows."""
    tab["refresh"].click(runs, None, tab["run"], api_visibility="private")
    outputs = [tab[name] for name in RESULTS]
    tab["timer"].tick(view, [tab["run"], tab["shown"], language], outputs, show_progress="hidden",
                      api_visibility="private")  # fmt: skip
    # Another run or language: everything drawn afresh, and the last Start's message (about another run, or in the
    # other language) goes.
    gr.on(
        [tab["run"].change, language.change],
        lambda run_id, language: (*view(run_id, "", language), ""),
        [tab["run"], language],
        [*outputs, tab["message"]],
        show_progress="hidden",
        api_visibility="private",
    )
    # The Data tab's datasets and the store change while the page is open: offered afresh as a run is picked.
    gr.on([tab["run"].change, language.change], sources, language, tab["source"], api_visibility="private")
    options = [tab["run"], tab["source"], tab["limit"], tab["probe"], tab["probe_limit"], language]
    tab["start"].click(start, options, tab["message"], api_visibility="private")


def runs():
    """The finished runs to evaluate, as an update of the run picker."""
    return gr.update(choices=adapter_choices()[1:])


def source_choices(t: Translator = EN) -> list[tuple[str, str]]:
    """The run's own sets, then the Data tab's datasets (samples, yours), then the files of the data store."""
    choices = [(t(label), key) for key, label in SPLITS.items()]
    choices += [(label, key) for label, key in data_tab.dataset_choices(t.language)]
    choices += [(t("stored · {name}", name=path.name), key) for key, path in _stored().items()]
    return choices


def sources(language: str | None = None):
    return gr.update(choices=source_choices(i18n.translator(language)))


def _stored() -> dict[str, Path]:
    """The data store's files (`datasets_dir()/<sha256>/<name>`) by a key that names no server path."""
    root = home.datasets_dir()
    return {
        f"{STORED}/{path.parent.name[:12]}/{path.name}": path
        for path in sorted(root.glob("*/*"))
        if path.is_file() and not path.name.startswith(".")
    }


def _data_file(key: str) -> Path | None:
    """The file a source key names (None for the run's own sets); KeyError for a key the page did not offer."""
    if key in SPLITS:
        return None
    if key.startswith(f"{STORED}/"):
        return _stored()[key]
    return data_tab.listed_datasets()[key]


def start(
    run_id: str | None,
    source: str | None,
    limit: float | None,
    probe: bool,
    probe_limit: float | None,
    language: str | None = None,
) -> str:
    """Start evaluating the chosen run in a process of its own; the timer shows how it goes."""
    t = i18n.translator(language)
    if not run_id:
        return t("Choose a finished run.")
    try:
        files = JobStore().get(run_id).files
        data = _data_file(source or "test")
    except WorkbenchError as err:
        return f"**{t.error(err)}**"
    except KeyError:
        return t("Choose what to ask.")
    with _starting:  # two clicks at once start one evaluation
        if launch.state(files) == "running":
            return t("This run is being evaluated already.")
        process = launch.start(
            files,
            probe=bool(probe),
            data=data,
            split=source if source in SPLITS else "test",
            limit=int(limit) if limit else None,
            probe_limit=int(probe_limit) if probe and probe_limit else None,
        )
    # Reap the child when it ends (no zombie); its state is read from the run folder, not from here.
    threading.Thread(target=process.wait, daemon=True).start()
    return t("Started: the models are loading.")


def view(run_id: str | None, shown: str, language: str | None = None) -> tuple:
    """Where the run's evaluation stands, its log and, when the report is new to the page, its results. Each tick
    reads process.json and the log's tail; report.json only when it changed."""
    t = i18n.translator(language)
    if not run_id:
        return "", "", "", None, None, "", None, ""
    try:
        files = JobStore().get(run_id).files
    except WorkbenchError as err:
        return f"**{t.error(err)}**", "", "", None, None, "", None, ""
    state = launch.state(files)
    text = _tail(files.evaluation / launch.LOG) if state is not None else ""
    log = gr.update(value=text, visible=bool(text))  # no empty box before an evaluation was started here
    report_file = files.evaluation / reports.REPORT
    version = f"{run_id}:{state}:{report_file.stat().st_mtime if report_file.is_file() else 0}:{t.language}"
    keep = gr.update()
    if version == shown:
        status = _status(files, state, text, None, t) if state in ("running", "failed") else keep
        return status, log, keep, keep, keep, keep, keep, shown
    report = reports.read(files.evaluation)
    status = _status(files, state, text, report, t)
    if report is None:
        return status, log, "", None, None, "", None, version
    chart_file = files.evaluation / reports.CHART
    return (
        status,
        log,
        evaluation_view.forgetting(report, t),
        evaluation_view.metrics_table(report, t),
        _image(chart_file) if chart_file.is_file() else None,
        evaluation_view.probe_line(report, t),
        evaluation_view.examples_table(report, t),
        version,
    )


def _status(files, state: str | None, log: str, report: dict[str, Any] | None, t: Translator) -> str:
    if state == "running":
        began = launch.started_at(files) or time.time()
        return t("**Evaluating…** {time} so far", time=_duration(time.time() - began))
    if state == "failed":
        error = next((line for line in reversed(log.splitlines()) if line.startswith("error:")), "")
        problem = t.message(error.removeprefix("error:").strip()) if error else t("see the log")
        return t("**The evaluation failed**: {problem}", problem=problem)
    if report is None:
        return t("Not evaluated yet: choose what to ask and start.")
    what = evaluation_view.summary(report, t)
    return t("**Evaluated** · {what}", what=what) if what else t("**Evaluated**")


def _tail(path: Path, lines: int = 12) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 16384))  # lm-eval's progress bars make long lines
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    # A progress bar redraws its line with carriage returns: keep what it shows last.
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.splitlines()[-lines:])


def _image(path: Path):
    # Gradio serves only files under its cache, the temp dir or the working directory, and the data home is none
    # of them: hand it the picture, which it saves into its cache.
    from PIL import Image

    with Image.open(path) as image:
        return image.copy()


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return time.strftime("%H:%M:%S" if seconds >= 3600 else "%M:%S", time.gmtime(seconds))
