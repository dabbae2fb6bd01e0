"""The Data tab: upload a file or pick a sample; see its kind, columns, rows, a rendered example and token
statistics; say which field is which where the columns are not recognised, and fill in placeholders. Its text is in
the page's language (`workbench/ui/i18n.py`: `_` for what the tab is built with, `t` for what its events say)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from pydantic import ValidationError

from workbench import access, ratings
from workbench.access import SAMPLES
from workbench.config import DatasetSpec
from workbench.data import layouts
from workbench.data.formats import UnknownLayout
from workbench.data.inspect import PREVIEW_ROWS, Preview, count_rows, inspect_tokens, preview, stages_for
from workbench.data.loading import KIND_NAMES
from workbench.errors import WorkbenchError
from workbench.ui import background, data_mix, data_sources, i18n
from workbench.ui.i18n import Translator, _

SUPPORTED = list(access.DATASET_SUFFIXES)
# The example's spans by what becomes of them in training (`inspect_tokens`); the page names them in its language.
SPAN_COLORS = {"trained": "#16a34a", "prompt (masked)": "#9ca3af"}
SOURCES = {"yours": "yours · {name}", "sample": "sample · {name}"}  # how the picker names a dataset, by its key
# The columns form offers a role for this many fields; more are mapped in the YAML.
MAX_COLUMNS = 12
MAX_PLACEHOLDERS = 6
# What `inspect` updates, in the order of the tab's "outputs"; `role<i>` and `fill<i>` are the form's fields.
OUTPUT_NAMES = (
    "shown", "summary", "error", "table", "example", "histogram", "stats_md", "stats", "columns_box",
    *(f"role{i}" for i in range(MAX_COLUMNS)), "columns_more", "field_names", "fill_box",
    *(f"fill{i}" for i in range(MAX_PLACEHOLDERS)), "fill_names",
)  # fmt: skip


def sample_files() -> list[str]:
    return sorted(p.name for p in SAMPLES.iterdir() if p.suffix in SUPPORTED)


def listed_datasets() -> dict[str, Path]:
    """The datasets made here (ratings from the Chat tab), then the shipped samples, by a key that names no
    server path ("yours/<name>", "sample/<name>"): the picker's values."""
    collected = {f"yours/{path.name}": path for path in ratings.collected_datasets()}
    return collected | {f"sample/{name}": SAMPLES / name for name in sample_files()}


def dataset_choices(language: str | None = None) -> list[tuple[Any, str]]:
    """The picker's (label, key) pairs, labelled in `language` (None: as the page is built, in the page's)."""
    return [(_dataset_label(key, language), key) for key in listed_datasets()]


def _dataset_label(key: str, language: str | None) -> Any:
    source, _slash, name = key.partition("/")
    if language is None:
        return _(SOURCES[source], name=name)
    return i18n.translator(language)(SOURCES[source], name=name)


def role_choices() -> list[tuple[Any, str]]:
    return [(_("not used"), ""), *((_(title), key) for key, title in layouts.ROLES.items())]


def build() -> dict[str, Any]:
    """Render the tab; returns the components other tabs read: the chosen dataset (kept on the server: its path,
    columns and placeholder values) and its stats."""
    with gr.Row():
        upload = gr.File(
            label=_("Upload a dataset"), file_types=[*SUPPORTED, access.ARCHIVE_SUFFIX], type="filepath",
            elem_id="data-upload",
        )  # fmt: skip
        with gr.Column():
            sample = gr.Dropdown(
                dataset_choices(),
                value=None,
                label=_("…or pick a sample or one of yours"),
                info=_("Yours: preference pairs rated in the Chat tab's side-by-side mode"),
                elem_id="data-sample",
            )
            # Shows the file's name; the path itself stays on the server (`dataset`), so no event of the page
            # takes a path from the browser.
            shown = gr.Textbox(label=_("Dataset file"), interactive=False, elem_id="data-path")
            summary = gr.Markdown(elem_id="data-summary")
    sources = data_sources.build()  # a folder's entry or split, and hub datasets
    error = gr.Markdown(elem_id="data-error")
    with gr.Accordion(_("Columns: which field is which"), open=False, visible=False, elem_id="data-columns") as box:
        gr.Markdown(
            _(
                "Each field of the rows plays a role in the conversation the model learns from, or none. The "
                "choice goes into the run config (`data.datasets.0.columns`)."
            )
        )
        roles = []
        for start in range(0, MAX_COLUMNS, 4):
            with gr.Row():
                roles += [
                    gr.Dropdown(
                        role_choices(),
                        value="",
                        label=_("field {number}", number=i + 1),
                        visible=False,
                        elem_id=f"data-role-{i}",
                    )
                    for i in range(start, start + 4)
                ]
        columns_more = gr.Markdown()
        apply_columns = gr.Button(_("Use these columns"), elem_id="data-columns-apply")
    with gr.Group(visible=False, elem_id="data-placeholders") as fill_box:
        gr.Markdown(
            _(
                "**Placeholders in the data.** Give their values: they are filled into every row, in the preview, "
                "in training and in the run config (`data.datasets.0.fill`). Left empty, the model learns them as "
                "written."
            )
        )
        with gr.Row():
            fills = [
                gr.Textbox(label=_("placeholder {number}", number=i + 1), visible=False, elem_id=f"data-fill-{i}")
                for i in range(MAX_PLACEHOLDERS)
            ]
    table = gr.Dataframe(label=_("First rows"), wrap=True, max_height=320, elem_id="data-preview")
    example = gr.HighlightedText(
        label=_("First example as the model sees it: green tokens are trained, grey ones are masked"),
        color_map={
            i18n.translator(code)(kind): color for code in i18n.languages() for kind, color in SPAN_COLORS.items()
        },  # fmt: skip
        combine_adjacent=True,
        elem_id="data-example",
    )
    with gr.Row():
        histogram = gr.BarPlot(x="tokens", y="rows", title=_("Token lengths"), height=240, elem_id="data-histogram")
        stats_md = gr.Markdown(elem_id="data-stats")
    mix = data_mix.build()  # several datasets, each with a share
    stats = gr.State({})
    # The chosen dataset as a spec ({"path", "columns", "fill"}), set by the upload, the picker, the columns form
    # and the placeholders; the path never comes from the browser.
    dataset = gr.State({})
    field_names = gr.State([])  # the fields the role dropdowns stand for, in order
    # What the value boxes show: the file, its placeholders and the values in use. While these stay the same, the
    # boxes are left as they are (a box being typed in is not reset when the value typed before it comes in).
    fill_names = gr.State({})
    outputs = [shown, summary, error, table, example, histogram, stats_md, stats, box, *roles, columns_more,
               field_names, fill_box, *fills, fill_names]  # fmt: skip
    return {
        "upload": upload,
        "sample": sample,
        "dataset": dataset,
        "stats": stats,
        "error": error,
        "roles": roles,
        "apply_columns": apply_columns,
        "field_names": field_names,
        "fills": fills,
        "fill_names": fill_names,
        "outputs": outputs,
        "sources": sources,
        "mix": mix,
        # What the run trains on (the mix once it holds a dataset, else the dataset shown) and its stats: what the
        # Train tab reads.
        "chosen": gr.State({}),
        "run_stats": gr.State({}),
    }


def wire(tab: dict[str, Any], model, cutoff, train_on_prompt, system_prompt, shown, language) -> None:
    """Inspect whenever the dataset (its file, columns or placeholder values), the model, the cutoff, the system
    prompt or the page's `language` changes; `shown` (the tab) refreshes the datasets."""
    inputs = [tab["dataset"], model, cutoff, train_on_prompt, system_prompt, tab["fill_names"], language]
    data_sources.wire(tab, language)  # the upload (a file, or a folder as a zip), a folder's entry or split, the hub
    tab["sample"].change(listed, tab["sample"], tab["dataset"], api_visibility="private")
    shown.select(
        lambda language: gr.update(choices=dataset_choices(language)),
        language,
        tab["sample"],
        api_visibility="private",
    )
    # One inspection at a time, the latest last: a slow earlier one (a file read before its placeholders were
    # filled in) must not overwrite what the newer one shows.
    gr.on(
        [tab["dataset"].change, cutoff.blur, system_prompt.blur, language.change],
        inspect,
        inputs,
        tab["outputs"],
        concurrency_limit=1,
        trigger_mode="always_last",
        api_visibility="private",
    )
    tab["apply_columns"].click(
        lambda dataset, names, language, *roles: use_columns(dataset, names, *roles, language=language),
        [tab["dataset"], tab["field_names"], language, *tab["roles"]],
        [tab["dataset"], tab["error"]],
        api_visibility="private",
    )
    fill_inputs = [tab["dataset"], tab["fill_names"], *tab["fills"]]
    fill_outputs = [tab["dataset"], tab["fill_names"]]
    for box in tab["fills"]:
        # On leaving the box (or Enter), not on each key: each change reads the data again.
        box.blur(use_fill, fill_inputs, fill_outputs, api_visibility="private")
        box.submit(use_fill, fill_inputs, fill_outputs, api_visibility="private")


def listed(key: str | None) -> dict[str, str]:
    """The dataset of a picked key (the picker only offers listed keys; Gradio refuses any other value)."""
    path = listed_datasets().get(key or "")
    return {"path": str(path)} if path else {}


def use_columns(
    dataset: dict[str, Any], field_names: list[str], *roles: str, language: str | None = None
) -> tuple[Any, str]:
    """The dataset read with the roles chosen in the columns form (an updated spec), or why they cannot be (in the
    page's `language`)."""
    t = i18n.translator(language)
    if not dataset.get("path"):
        return gr.update(), ""
    columns: dict[str, str] = {}
    for field, role in zip(field_names, roles, strict=False):
        if not role:
            continue
        if role in columns:
            title = t(layouts.ROLES.get(role, role))
            return gr.update(), t(
                "**Two fields are the {role}: {first} and {second}.** A role takes one field.",
                role=title, first=columns[role], second=field,
            )  # fmt: skip
        columns[role] = field
    # A field left unused whose name a role takes by default (alpaca's `input`, `system`) is switched off.
    columns.update({key: "" for key, name in layouts.OPTIONAL_DEFAULTS.items() if key not in columns
                    and name in field_names and name not in columns.values()})  # fmt: skip
    spec = {k: v for k, v in dataset.items() if k not in ("columns", "format")}  # the roles say the format
    return {**spec, "columns": columns} if columns else spec, ""


def use_fill(dataset: dict[str, Any], fill_names: dict[str, Any], *values: str) -> tuple[dict, dict]:
    """The dataset with the placeholder values typed in (empty boxes give none), and what the boxes show now."""
    if not dataset.get("path"):
        return dataset, fill_names
    names = fill_names.get("names", [])
    fill = {name: value.strip() for name, value in zip(names, values, strict=False) if value and value.strip()}
    spec = {k: v for k, v in dataset.items() if k != "fill"}
    return ({**spec, "fill": fill} if fill else spec), {**fill_names, "values": fill}


def inspect(
    dataset: dict[str, Any],
    model: str,
    cutoff: float,
    train_on_prompt: bool,
    system_prompt: str | None,
    fill_names: dict[str, Any] | None = None,
    language: str | None = None,
):
    """The tab's outputs, step by step (see `inspect_steps`)."""
    for step in inspect_steps(dataset, model, cutoff, train_on_prompt, system_prompt, fill_names, language):
        yield tuple(_expand(step).get(name, gr.update()) for name in OUTPUT_NAMES)


def _expand(step: dict[str, Any]) -> dict[str, Any]:
    # "roles" and "fills" stand for the form's fields, one update each.
    step = dict(step)
    for group, count in (("roles", MAX_COLUMNS), ("fills", MAX_PLACEHOLDERS)):
        if group in step:
            step.update({f"{group[:-1]}{i}": update for i, update in zip(range(count), step.pop(group), strict=True)})
    return step


def inspect_steps(
    dataset: dict[str, Any],
    model: str,
    cutoff: float,
    train_on_prompt: bool,
    system_prompt: str | None = None,
    fill_names: dict[str, Any] | None = None,
    language: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The first rows at once (read here, whatever the file's size), then from the helper process, which reads
    the whole file: every row checked and counted, then token statistics. Each step is a dict of output names
    (OUTPUT_NAMES; "roles" and "fills" for the form's fields) to values; names left out keep their value.
    `fill_names` is what the placeholder boxes stand for now; the text is in the page's `language`."""
    t = i18n.translator(language)
    cleared = {"shown": "", "summary": "", "table": None, "example": None, "histogram": None, "stats_md": "",
               "stats": {}, **_columns_form(None, t), **_fill_form("", [], {})}  # fmt: skip
    showing = fill_names or {}
    if not dataset or not dataset.get("path"):
        yield {**cleared, "error": ""}
        return
    try:
        # The dataset comes from the server's own state; checked again so no path reaches the readers unchecked.
        path = str(access.readable_dataset(dataset["path"]))
        spec = DatasetSpec(**{**dataset, "path": path})
    except WorkbenchError as err:
        yield {**cleared, "error": f"**{t.error(err)}**"}
        return
    except ValidationError as err:
        yield {
            **cleared,
            "error": t("**Cannot use these settings:** {problem}", problem=t.message(err.errors()[0]["msg"])),
        }
        return
    name = data_sources.shown_name(path, dataset)
    system_prompt = system_prompt or None
    try:
        seen = preview(spec, system_prompt=system_prompt)
    except WorkbenchError as err:
        yield {**cleared, "shown": name, "error": t("**Cannot use this file.** {problem}", problem=t.error(err))}
        return
    form = {**_columns_form(seen, t), **_fill_form(path, seen.placeholders, spec.fill, showing)}
    if seen.loaded is None:
        yield {**cleared, **form, "shown": name, "summary": f"**{name}**", "error": _problem(seen, t),
               "table": pd.DataFrame(seen.rows)}  # fmt: skip
        return
    summary = _summary(name, seen, seen.loaded.format, seen.loaded.rows, t)
    empty = gr.update()
    # The columns of the rows as read are the roles of a conversation (user, assistant, ...): named in the language.
    table = pd.DataFrame(seen.rows).rename(columns=t.message)
    yield {**form, "shown": name, "summary": summary, "error": "", "table": table,
           "example": empty, "histogram": empty, "stats_md": t("Reading every row…")}  # fmt: skip
    try:
        counted = background.call(count_rows, spec)
    except WorkbenchError as err:  # a row past the first ones
        yield {"error": t("**Cannot use this file.** {problem}", problem=t.error(err)), "example": None,
               "histogram": None, "stats_md": "", "stats": {}}  # fmt: skip
        return
    found = list(dict.fromkeys([*seen.placeholders, *counted.unfilled]))
    more = _fill_form(path, found, spec.fill, showing) if found != seen.placeholders else {}  # past the first rows
    yield {
        **more,
        "summary": _summary(name, seen, seen.loaded.format, counted.rows, t),
        "error": "",
        "stats_md": t("Counting tokens…"),
    }
    try:
        result = background.call(inspect_tokens, spec, model, int(cutoff), bool(train_on_prompt), system_prompt)
    except WorkbenchError as err:
        yield {"error": t("**Cannot tokenize this file.** {problem}", problem=t.error(err)), "example": None,
               "histogram": None, "stats_md": "", "stats": {}}  # fmt: skip
        return
    s = result["stats"]
    edges, counts = s["histogram_edges"], s["histogram_counts"]
    labels = [f"{int(edges[i])}–{int(edges[i + 1])}" for i in range(len(counts))]
    x, y = t("tokens"), t("rows")
    bars = gr.BarPlot(pd.DataFrame({x: labels, y: counts}), x=x, y=y, sort=labels)  # bins in length order
    truncated = s["truncated_rows"] / max(s["rows"] + s["dropped_rows"], 1)
    text = t(
        "**{rows}** rows · mean **{mean:.0f}** tokens, median {median:.0f}, p90 {p90:.0f}, longest {longest}  \n"
        "**{truncated:.1%}** cut at {cutoff} tokens · {dropped} dropped (nothing left to train) · "
        "{trained:,} of {total:,} tokens trained",
        rows=s["rows"], mean=s["length_mean"], median=s["length_median"], p90=s["length_p90"],
        longest=s["length_max"], truncated=truncated, cutoff=s["cutoff_len"], dropped=s["dropped_rows"],
        trained=s["trained_tokens"], total=s["total_tokens"],
    )  # fmt: skip
    if seen.kind == "text":
        text = _text_stats(s, t)
    stats = {**s, "kind": seen.kind, "placeholders": found}
    example = [(piece, t(kind)) for piece, kind in result["example"]]
    yield {"error": "", "example": example, "histogram": bars, "stats_md": text, "stats": stats}


def _problem(seen: Preview, t: Translator) -> str:
    if isinstance(seen.error, UnknownLayout):
        fields = ", ".join(seen.fields) or t("(none)")
        guess = t(" (a first guess is filled in)") if seen.guessed else ""
        return t(
            "**Which field is which?** These columns are not a layout the workbench knows ({fields}). Choose a "
            "role for each under *Columns*{guess} and press **Use these columns**.",
            fields=fields, guess=guess,
        )  # fmt: skip
    return t("**Cannot use this file.** {problem}  \nCheck the roles under *Columns*.", problem=t.error(seen.error))


def _columns_form(seen: Preview | None, t: Translator) -> dict[str, Any]:
    """The columns form for a dataset: one role per field, open when the roles need a person's word."""
    fields = seen.fields if seen is not None else []
    role_of = {field: key for key, field in seen.mapping.items()} if seen is not None else {}
    roles = [
        gr.update(
            visible=True,
            label=fields[i],
            info=t("e.g. {sample}", sample=seen.samples[fields[i]]) if seen else None,
            value=role_of.get(fields[i], ""),
        )  # fmt: skip
        if i < len(fields)
        else gr.update(visible=False, value="")
        for i in range(MAX_COLUMNS)
    ]
    more = len(fields) - MAX_COLUMNS
    return {
        "columns_box": gr.update(visible=bool(fields), open=seen is not None and seen.loaded is None),
        "roles": roles,
        "columns_more": t("{more} more fields are not shown here: map them in the YAML.", more=more)
        if more > 0
        else "",
        "field_names": fields[:MAX_COLUMNS],
    }


def _fill_form(path: str, names: list[str], values: dict[str, str], showing: dict | None = None) -> dict[str, Any]:
    """A value box for each placeholder found (the first MAX_PLACEHOLDERS), unless the boxes show them already."""
    shown = names[:MAX_PLACEHOLDERS]
    now = {"path": path, "names": shown, "values": values}
    if showing == now:
        return {}
    boxes = [
        gr.update(visible=True, label=f"{{{{{shown[i]}}}}}", value=values.get(shown[i], ""))
        if i < len(shown)
        else gr.update(visible=False, value="")
        for i in range(MAX_PLACEHOLDERS)
    ]
    return {"fill_box": gr.update(visible=bool(shown)), "fills": boxes, "fill_names": now}


def _summary(name: str, seen: Preview, format: str, rows: int | None, t: Translator) -> str:
    if rows is not None:
        counted = t("**{rows:,}** rows", rows=rows)
    else:
        counted = t("first {shown} rows shown, counting the rest…", shown=PREVIEW_ROWS)
    roles = {key: t(title) for key, title in layouts.ROLES.items()}
    columns = t("  \nColumns: {columns}", columns=layouts.describe(seen.mapping, roles)) if seen.mapping else ""
    return t(
        "**{name}** · {kind} · format **{format}** · {counted}{columns}  \n"
        "Trains with: **{stages}** (pick the stage in the Train tab)",
        name=name, kind=t(KIND_NAMES[seen.kind]), format=format, counted=counted, columns=columns,
        stages=", ".join(t(title) for title in stages_for(seen.kind)),
    )  # fmt: skip


def _text_stats(s: dict[str, Any], t: Translator) -> str:
    """Raw text's stats: documents, and the blocks of the cutoff length their tokens are packed into."""
    return t(
        "**{documents:,}** documents · mean **{mean:.0f}** tokens with the end-of-text token, longest {longest:,}  \n"
        "**{blocks:,}** blocks of up to {cutoff} tokens · every one of the {total:,} tokens trained",
        documents=sum(s["histogram_counts"]), mean=s["length_mean"], longest=s["length_max"], blocks=s["rows"],
        cutoff=s["cutoff_len"], total=s["total_tokens"],
    )  # fmt: skip
