"""The Export tab: download a finished run's adapter as a zip, or merge it into the base model; what it says is in
the page's language (`workbench/ui/i18n.py`)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from workbench import methods
from workbench.errors import WorkbenchError
from workbench.export import adapter_zip_name, merge_adapter, zip_adapter, zip_folder
from workbench.runs.store import JobStore
from workbench.ui import downloads, i18n
from workbench.ui.chat_tab import adapter_choices
from workbench.ui.i18n import _


def build() -> dict[str, Any]:
    with gr.Row():
        # Choices come on page load (`runs`): the page served before login names no run.
        run = gr.Dropdown([], label=_("Finished run"), elem_id="export-run", scale=3)
        refresh = gr.Button(_("↻ runs"), scale=0)
    gr.Markdown(
        _(
            "The zip holds the run's result, the tokenizer, a model card (how to load it) and the loss chart: a "
            "PEFT adapter (`adapter_config.json`, `adapter_model.safetensors`) loads anywhere with "
            "`PeftModel.from_pretrained(base, folder)`; full and freeze tuning leave a whole model for "
            "`AutoModelForCausalLM`; bottleneck adapters load with `workbench.adapters.bottleneck.load`. Merging is "
            "offered where the method's update is a change of the weights, and otherwise says why not."
        )
    )
    with gr.Row():
        zip_button = gr.Button(_("Prepare adapter zip"), elem_id="export-zip")
        download = gr.DownloadButton(_("Download adapter zip"), visible=False, elem_id="export-download")
    with gr.Row():
        merge_button = gr.Button(_("Merge into the base model"), elem_id="export-merge")
        merged_download = gr.DownloadButton(
            _("Download merged model"), visible=False, elem_id="export-merged-download"
        )
    message = gr.Markdown(elem_id="export-message")
    return locals()


def wire(tab: dict[str, Any], language) -> None:
    """The tab's events; `language` is the page's, which what they say follows."""
    tab["refresh"].click(runs, None, tab["run"], api_visibility="private")
    chosen = [tab["run"], language]
    tab["zip_button"].click(_zip, chosen, [tab["download"], tab["message"]], api_visibility="private")
    merged = [tab["merged_download"], tab["message"]]
    tab["merge_button"].click(_merge, chosen, merged, api_visibility="private")
    offered = [tab["merge_button"], tab["message"]]
    gr.on([tab["run"].change, language.change], _offer, chosen, offered, api_visibility="private")


def runs():
    """The finished runs to export, as an update of the run picker."""
    return gr.update(choices=adapter_choices()[1:])


def _offer(run_id: str | None, language: str | None = None):
    """Offer merging only where the run's method allows it, and say why not elsewhere."""
    t = i18n.translator(language)
    if not run_id:
        return gr.update(interactive=True), ""
    try:
        spec = methods.get(JobStore().get(run_id).files.read_config().method.name)
    except (WorkbenchError, KeyError, OSError) as err:
        return gr.update(interactive=False), f"**{t.error(err)}**"
    if spec.mergeable:
        return gr.update(interactive=True), t(
            "{method}: the zip holds the adapter; it can also be merged.", method=t(spec.title)
        )
    return gr.update(interactive=False), t(
        "**{method} cannot be merged**: {reason}.", method=t(spec.title), reason=t(spec.merge_refusal)
    )


def _zip(run_id: str | None, language: str | None = None):
    t = i18n.translator(language)
    if not run_id:
        return gr.update(visible=False), t("Choose a finished run.")
    try:
        files = JobStore().get(run_id).files
        path = zip_adapter(files, downloads.new_path(adapter_zip_name(files)))
    except WorkbenchError as err:
        return gr.update(visible=False), f"**{t.error(err)}**"
    return gr.update(value=str(path), visible=True), t("Ready: `{file}`", file=path.name)


def _merge(run_id: str | None, language: str | None = None):
    t = i18n.translator(language)
    if not run_id:
        return gr.update(visible=False), t("Choose a finished run.")
    try:
        folder = merge_adapter(JobStore().get(run_id).files)
        archive = zip_folder(folder, downloads.new_path(f"{run_id}-merged.zip"))
    except WorkbenchError as err:
        return gr.update(visible=False), f"**{t.error(err)}**"
    saved = t("Merged model saved in the run's folder (`{folder}/`)", folder=folder.name)
    return gr.update(value=str(archive), visible=True), saved
