"""The Gradio app: six tabs over the engine. Building it imports no training library.

Every event is the page's own (`api_visibility="private"`), not a public API; the page served before login holds
no run and no server path. The page speaks English or Simplified Chinese (`workbench/ui/i18n.py`): the browser's
language, or the one picked in the language control at the top right.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import gradio as gr

from workbench import home, models
from workbench.data.reading import max_dataset_bytes
from workbench.runs import spawn
from workbench.runs.queue import RunQueue
from workbench.ui import (
    background,
    chat_tab,
    data_mix,
    data_tab,
    downloads,
    evaluate_tab,
    export_tab,
    i18n,
    runs_tab,
    serve_panel,
    serve_process,
    serving,
    train_tab,
)
from workbench.ui.i18n import _

STATIC = Path(__file__).resolve().parent.parent.parent / "static"
# Gradio's cache (uploads, downloads) is swept every hour of files older than a day, and emptied when it stops.
DELETE_CACHE = (3600, 86400)


def build_app() -> gr.Blocks:
    with gr.Blocks(title="Workbench", delete_cache=DELETE_CACHE) as app:
        with gr.Row(equal_height=True):
            gr.Markdown(_("# Workbench\nFine-tune a language model: data → method → train → chat → export."))
            # The page's language, which every event reads; static/language.js keeps it in step with the page.
            language = gr.Radio(
                [(name, code) for code, name in i18n.languages().items()],
                value=i18n.ENGLISH,
                label=_("Language"),
                show_label=False,
                container=False,
                scale=0,
                min_width=220,
                elem_id="page-language",
            )
        with gr.Tabs() as tabs:
            with gr.Tab(_("Data"), id="data") as data_shown:
                data = data_tab.build()
            with gr.Tab(_("Train"), id="train") as train_shown:
                train = train_tab.build()
            with gr.Tab(_("Runs"), id="runs"):
                runs = runs_tab.build()
            with gr.Tab(_("Chat"), id="chat"):
                chat = chat_tab.build()
            with gr.Tab(_("Evaluate"), id="evaluate"):
                evaluate = evaluate_tab.build()
            with gr.Tab(_("Export"), id="export"):
                export = export_tab.build()
        data_tab.wire(data, train["model"], train["cutoff"], train["train_on_prompt"], train["system_prompt"],
                      data_shown, language)  # fmt: skip
        data_mix.wire(data, train["model"], train["cutoff"], train["train_on_prompt"], train["system_prompt"],
                      train_tab.field(train, "data.mix_strategy"), train_tab.field(train, "train.seed"),
                      language)  # fmt: skip
        train_tab.wire(train, data["chosen"], data["run_stats"], tabs, runs["selector"], train_shown, language,
                       shown_dataset=data["dataset"], mix=data["mix"]["mix"])  # fmt: skip
        runs_tab.wire(runs, language)
        chat_tab.wire(chat, language)
        evaluate_tab.wire(evaluate, language)
        export_tab.wire(export, language)
        # The run pickers are filled as a page opens, not when the app is built: the page served before login
        # names no run, and a reloaded page lists the runs there are now. (The Runs tab's timer fills its own.)
        # Again once the page says its language: their "none" choices are in it, and the samples' labels (which
        # Gradio's frontend shows in the language it had when it drew them).
        gr.on(
            [app.load, language.change],
            lambda language: [*train_tab.offered_runs(train, language), chat_tab.adapters(language),
                              export_tab.runs(), gr.update(choices=data_tab.dataset_choices(language)),
                              export_tab.runs(), serve_panel.status(language), evaluate_tab.runs()],
            language,
            [*train_tab.run_pickers(train), chat["adapter"], export["run"], data["sample"], chat["serve"]["runs"],
             chat["serve"]["status"], evaluate["run"]],
            api_visibility="private",
        )  # fmt: skip
    return app


def _prepare_default_model() -> None:
    # Convert the bundled model in the helper process while the page loads, so the first inspection or
    # estimate does not wait ~25 s; the UI process itself never imports torch.
    default = next(iter(models.bundled_models()))
    if models.local_folder(default) is None:
        threading.Thread(target=background.call, args=(models.resolve, default), daemon=True).start()


def main(options: serving.Options | None = None) -> None:
    """Serve the workbench as `python app.py` was asked to (`serving.parse_args`)."""
    options = options or serving.parse_args()
    home.private_files()  # the data home, uploads and downloads: the user's alone (the workers inherit it)
    downloads.remove_stale()
    RunQueue().reconcile()  # runs whose worker died while nobody watched are marked before the page shows them
    _prepare_default_model()
    app = build_app()
    # Warms up the training stack while the person prepares a run. Started once the page is built: building it
    # sets variables (Gradio's HF_HUB_DISABLE_TELEMETRY) that the runs submitted here will carry, and the launcher
    # forks only for its own environment.
    spawn.ensure_launcher()
    signal.signal(signal.SIGTERM, _stopped)
    try:
        _serve(app, options)
    finally:  # Ctrl-C: Gradio has closed the server and removed the files it served
        downloads.remove_own()
        serve_process.stop_own()


def _stopped(signum: int, frame: object) -> None:
    # A stop (`kill`, a service manager) still ends the process at once, as it always did (a graceful close could
    # wait minutes for the helper process's current call), but the downloads made here go first: a merged model
    # is hundreds of megabytes in the temp dir.
    downloads.remove_own()
    serve_process.stop_own()  # the OpenAI server started from the Chat tab (it would also notice on its own)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _serve(app: gr.Blocks, options: serving.Options) -> None:
    from starlette.routing import Mount

    from workbench.api.runs_api import create_api

    # The REST API for runs, in front of Gradio's own routes, behind the same guards (workbench/api/runs_api.py).
    rest_api = Mount("/api", app=create_api(password=options.auth))
    app.queue(default_concurrency_limit=4).launch(
        server_name=options.host,
        server_port=options.port,
        auth=options.auth,
        share=options.share,
        max_file_size=max_dataset_bytes(),
        css_paths=[STATIC / "workbench.css"],
        js=(STATIC / "language.js").read_text(encoding="utf-8"),
        i18n=i18n.gradio_i18n(),
        show_error=True,
        ssr_mode=False,  # server-side rendering would start a Node.js server first: slower to open, no gain here
        app_kwargs={"middleware": serving.middleware(options), "routes": [rest_api]},
        footer_links=["gradio", "settings"],  # no "Use via API": the events are the page's own
        run_history=False,  # no run-history page (it shows the API description), nothing kept in the browser
        enable_monitoring=False,
    )
