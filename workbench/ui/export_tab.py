"""The Export tab: download a finished run's adapter as a zip, the merged model, GGUF files (model or LoRA) and
Ollama's Modelfile, with what the check after writing a GGUF found; what it says is in the page's language
(`workbench/ui/i18n.py`). Every export runs in child processes (`workbench/export/`): this process imports no
torch."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import gradio as gr

from workbench import methods
from workbench.errors import WorkbenchError
from workbench.export import adapter_zip_name, merge_adapter, zip_adapter, zip_folder
from workbench.export.gguf import ConverterType, GgufExport, QuantizerType, export_gguf, export_lora_gguf
from workbench.export.llama_cpp import quantizer
from workbench.export.ollama import export_ollama
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
    with gr.Accordion(_("GGUF (llama.cpp) and Ollama"), open=True):
        kquants = quantizer() is not None
        gr.Markdown(
            _(
                "GGUF files are written by llama.cpp's own converter from the merged model, then loaded back and "
                "compared with it (a minute or two for a small model). Ollama gets the GGUF and a `Modelfile` "
                "beside it: put both in one folder and run `ollama create NAME -f Modelfile`. The LoRA file is for "
                "llama.cpp's `--lora` on the base model's GGUF (plain LoRA only)."
            )
            if kquants
            else _(
                "GGUF files are written by llama.cpp's own converter from the merged model, then loaded back and "
                "compared with it (a minute or two for a small model). Ollama gets the GGUF and a `Modelfile` "
                "beside it: put both in one folder and run `ollama create NAME -f Modelfile`. The LoRA file is for "
                "llama.cpp's `--lora` on the base model's GGUF (plain LoRA only). Smaller k-quants (q4_k_m, …) "
                "need llama.cpp's `llama-quantize` on PATH, which this machine lacks: f16, q8_0, bf16 and f32 are "
                "offered."
            )
        )
        with gr.Row():
            quant = gr.Dropdown(gguf_types(), value="f16", label=_("GGUF type"), elem_id="export-gguf-quant", scale=1)
            gguf_button = gr.Button(_("Make GGUF"), elem_id="export-gguf", scale=1)
            ollama_button = gr.Button(_("Make GGUF + Ollama Modelfile"), elem_id="export-ollama", scale=1)
            lora_button = gr.Button(_("Make GGUF LoRA"), elem_id="export-gguf-lora", scale=1)
        with gr.Row():
            gguf_download = gr.DownloadButton(_("Download GGUF"), visible=False, elem_id="export-gguf-download")
            modelfile_download = gr.DownloadButton(
                _("Download Modelfile"), visible=False, elem_id="export-modelfile-download"
            )
            lora_download = gr.DownloadButton(
                _("Download GGUF LoRA"), visible=False, elem_id="export-gguf-lora-download"
            )
        check = gr.Markdown(elem_id="export-gguf-check")
    message = gr.Markdown(elem_id="export-message")
    return locals()


def gguf_types() -> list[str]:
    """The GGUF types offered: the converter's own, and the k-quants where llama-quantize is installed."""
    types = list(ConverterType.__args__)
    types.remove("f16")
    types.remove("q8_0")
    return ["f16", "q8_0", *types, *(QuantizerType.__args__ if quantizer() else ())]


def wire(tab: dict[str, Any], language) -> None:
    """The tab's events; `language` is the page's, which what they say follows."""
    tab["refresh"].click(runs, None, tab["run"], api_visibility="private")
    chosen = [tab["run"], language]
    tab["zip_button"].click(_zip, chosen, [tab["download"], tab["message"]], api_visibility="private")
    merged = [tab["merged_download"], tab["message"]]
    tab["merge_button"].click(_merge, chosen, merged, api_visibility="private")
    made = [tab["gguf_download"], tab["modelfile_download"], tab["lora_download"], tab["check"], tab["message"]]
    with_type = [tab["run"], tab["quant"], language]
    tab["gguf_button"].click(_gguf, with_type, made, api_visibility="private")
    tab["ollama_button"].click(_ollama, with_type, made, api_visibility="private")
    tab["lora_button"].click(_lora, chosen, made, api_visibility="private")
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


def _gguf(run_id: str | None, quant: str, language: str | None = None):
    return _made(run_id, language, lambda files: (export_gguf(files, [quant])[0], None))


def _ollama(run_id: str | None, quant: str, language: str | None = None):
    return _made(run_id, language, lambda files: export_ollama(files, quant)[::-1])


def _lora(run_id: str | None, language: str | None = None):
    return _made(run_id, language, lambda files: (export_lora_gguf(files), None))


def _made(run_id: str | None, language: str | None, make):
    """Run an export (`make(files)` → (GgufExport, Modelfile or None)) and offer its files for download."""
    t = i18n.translator(language)
    hidden = gr.update(visible=False)
    if not run_id:
        return hidden, hidden, hidden, "", t("Choose a finished run.")
    try:
        exported, modelfile = make(JobStore().get(run_id).files)
    except WorkbenchError as err:
        return hidden, hidden, hidden, "", f"**{t.error(err)}**"
    served = gr.update(value=str(_offered(exported.path)), visible=True)
    lora = exported.report["kind"] == "lora"
    gguf = hidden if lora else served
    modelfile_update = gr.update(value=str(_offered(modelfile)), visible=True) if modelfile else hidden
    ready = t("Ready: `{file}`", file=exported.path.name)
    if modelfile:
        ready = t(
            "Ready: `{file}` and its `Modelfile` (saved in `{folder}/` of the run). In one folder with both: "
            "`ollama create {name} -f Modelfile`, then `ollama run {name}`.",
            file=exported.path.name, folder=exported.path.parent.name, name=run_id.lower(),
        )  # fmt: skip
    return gguf, modelfile_update, served if lora else hidden, check_in_words(exported, t), ready


def _offered(path: Path) -> Path:
    """A copy of a run's export in the downloads folder (a hard link where it shares the file system)."""
    target = downloads.new_path(path.name)
    try:
        os.link(path, target)
    except OSError:
        shutil.copyfile(path, target)
    return target


def check_in_words(exported: GgufExport, t: i18n.Translator) -> str:
    """What the check after writing found, from the report beside the file (`<file>.json`)."""
    report, check = exported.report, exported.report.get("check")
    size = t("{megabytes:.1f} MB", megabytes=report["bytes"] / 1e6)
    head = f"`{report['file']}` ({size})"
    if not check:
        return t("{file}: not checked.", file=head)
    where = t("Report: `{report}`.", report=exported.report_path.name)
    if report["kind"] == "lora":
        matched = check["identical"] + check["identical_but_row_order"]
        text = t(
            "{file}: {matched} of {total} adapter tensors are in the file as they are in the adapter.",
            file=head, matched=matched, total=check["adapter_tensors"],
        )  # fmt: skip
        if check["unmatched"] or not check["alpha_matches"]:
            text += " " + t("**Warning:** the file does not hold the adapter as it is.")
        return f"{text} {where}"
    text = t(
        "{file}: loads back; {identical} of {prompts} greedy replies are identical to the merged model's, token "
        "for token, and it ranks {ranked:.1%} of the merged model's reply tokens first.",
        file=head, identical=check["identical_replies"], prompts=check["prompts"],
        ranked=check["reference_tokens_ranked_first"],
    )  # fmt: skip
    template = t("The chat template is in the file.") if check["chat_template_in_file"] else t(
        "**Warning:** the chat template in the file differs from the model's."
    )  # fmt: skip
    text += " " + template
    if report["type"] in ("f16", "f32", "bf16") and check["identical_replies"] < check["prompts"]:
        text += " " + t("**Warning:** an unquantised file should reply exactly as the merged model does.")
    return f"{text} {where}"
