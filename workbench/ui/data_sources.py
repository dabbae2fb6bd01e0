"""The Data tab's other sources: a dataset folder uploaded as a .zip (a `datasets` save_to_disk folder, or a
LLaMA-Factory folder with dataset_info.json), with its entry or split chosen here; and a Hugging Face hub dataset,
fetched into the dataset store by the helper process.

The page never names a server path: a zip is unpacked into the store (workbench/data/archive.py) and the chosen
dataset, kept on the server, points there; a hub dataset becomes a file in the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from workbench import access
from workbench.data import archive, hub, saved
from workbench.data.dataset_info import INFO_FILE, local_entries
from workbench.errors import WorkbenchError
from workbench.ui import background, i18n
from workbench.ui.i18n import _

FETCH_SECONDS = 3600  # a big hub dataset takes a while; the helper process does nothing else meanwhile


def build() -> dict[str, Any]:
    """The entry and split pickers (shown for a folder that has them) and the hub form."""
    with gr.Row():
        entry = gr.Dropdown(
            [],
            label=_("Dataset in dataset_info.json"),
            info=_("The folder lists several datasets: choose one"),
            visible=False,
            elem_id="data-entry",
        )
        split = gr.Dropdown(
            [], label=_("Split"), info=_("The saved DatasetDict's split"), visible=False, elem_id="data-split"
        )
    with gr.Accordion(_("From the Hugging Face hub, or a folder as a .zip"), open=False, elem_id="data-hub"):
        gr.Markdown(
            _(
                "A **folder** written by `datasets`' `save_to_disk`, or a LLaMA-Factory data folder with "
                "`dataset_info.json`: zip it and upload the .zip above. A **hub dataset** is downloaded into the "
                "dataset store here, where the machine can reach the hub."
            )
        )
        with gr.Row():
            repo = gr.Textbox(label=_("Hub dataset"), placeholder="org/name", elem_id="data-hub-id")
            subset = gr.Textbox(label=_("Subset"), placeholder=_("optional"), elem_id="data-hub-subset")
            hub_split = gr.Textbox(label=_("Split"), placeholder="train", elem_id="data-hub-split")
            fetch = gr.Button(_("Fetch"), elem_id="data-hub-fetch")
    return {"entry": entry, "split": split, "repo": repo, "subset": subset, "hub_split": hub_split, "fetch": fetch}


def wire(tab: dict[str, Any], language) -> None:
    """`tab`: the Data tab's components, with this section's under "sources"; `language`: the page's."""
    parts, dataset, error = tab["sources"], tab["dataset"], tab["error"]
    tab["upload"].upload(uploaded, [tab["upload"], language], [dataset, error], api_visibility="private")
    dataset.change(pickers, dataset, [parts["entry"], parts["split"]], api_visibility="private")
    parts["entry"].input(choose_entry, [dataset, parts["entry"]], dataset, api_visibility="private")
    parts["split"].input(choose_split, [dataset, parts["split"]], dataset, api_visibility="private")
    parts["fetch"].click(
        fetch_from_hub,
        [parts["repo"], parts["subset"], parts["hub_split"], language],
        [dataset, error],
        api_visibility="private",
    )


def uploaded(path: str | None, language: str | None = None) -> tuple[Any, str]:
    """The dataset an upload gives: the file, or the dataset folder a .zip holds, unpacked into the store. A zip
    that cannot be used leaves the chosen dataset as it was and says why."""
    if not path:
        return {}, ""
    if Path(path).suffix.lower() != access.ARCHIVE_SUFFIX:
        return {"path": path}, ""
    try:
        folder = archive.unpack(access.uploaded_archive(path))
    except WorkbenchError as err:
        t = i18n.translator(language)
        return gr.update(), t("**Cannot use this zip.** {problem}", problem=t.error(err))
    return {"path": str(folder)}, ""


def shown_name(path: str, dataset: dict[str, Any]) -> str:
    """How the tab names a dataset: its file, or its folder and the entry or split chosen in it."""
    return " · ".join(part for part in (Path(path).name, dataset.get("name"), dataset.get("split")) if part)


def pickers(dataset: dict[str, Any]) -> tuple[Any, Any]:
    """The entry picker for a folder with dataset_info.json, the split picker for a saved DatasetDict."""
    hidden = gr.update(visible=False, choices=[], value=None)
    try:
        folder = access.readable_dataset(dataset.get("path") or "")
    except WorkbenchError:
        return hidden, hidden
    if not folder.is_dir():
        return hidden, hidden
    try:
        if saved.is_saved(folder):
            names = saved.splits(folder)
            chosen = dataset.get("split") or (saved.DEFAULT_SPLIT if saved.DEFAULT_SPLIT in names else None)
            return hidden, gr.update(visible=bool(names), choices=names, value=chosen)
        entries = local_entries(folder) if (folder / INFO_FILE).is_file() else []
    except WorkbenchError:
        return hidden, hidden  # the inspection says what is wrong with the folder
    return gr.update(visible=bool(entries), choices=entries, value=dataset.get("name")), hidden


def choose_entry(dataset: dict[str, Any], entry: str | None) -> Any:
    """The folder's dataset read through the chosen entry (its own columns, not those mapped for another one);
    only an entry whose data file is in the folder (a hub entry would be fetched by this process)."""
    try:
        folder = access.readable_dataset(dataset.get("path") or "")
        allowed = folder.is_dir() and entry in local_entries(folder)
    except WorkbenchError:
        allowed = False
    return _chosen(dataset, "name", entry) if allowed else gr.update()


def choose_split(dataset: dict[str, Any], split: str | None) -> Any:
    return _chosen(dataset, "split", split)


def _chosen(dataset: dict[str, Any], key: str, value: str | None) -> Any:
    if not dataset.get("path") or not value or dataset.get(key) == value:
        return gr.update()
    spec = {k: v for k, v in dataset.items() if k in ("path", "name", "split")}
    return {**spec, key: value}


def fetch_from_hub(repo: str, subset: str, split: str, language: str | None = None) -> tuple[Any, str]:
    """A hub dataset downloaded into the store (in the helper process), as the chosen dataset; or why not."""
    t = i18n.translator(language)
    repo = (repo or "").strip().removeprefix(hub.PREFIX)
    if not repo:
        return gr.update(), t("**Which hub dataset?** Give its id, such as org/name.")
    try:
        path = background.call(
            hub.fetch, hub.PREFIX + repo, (subset or "").strip() or None, (split or "").strip() or None,
            timeout=FETCH_SECONDS,
        )  # fmt: skip
    except WorkbenchError as err:
        return gr.update(), t("**Cannot fetch this dataset.** {problem}", problem=t.error(err))
    except TimeoutError:
        return gr.update(), t(
            "**Cannot fetch this dataset:** it took over {minutes} minutes.", minutes=FETCH_SECONDS // 60
        )
    return {"path": str(path)}, ""
