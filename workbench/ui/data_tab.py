"""The Data tab: upload a file or pick a sample; see its format, rows, a rendered example and token statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from workbench import access, ratings
from workbench.access import SAMPLES
from workbench.config import DatasetSpec
from workbench.data.inspect import PREVIEW_ROWS, count_rows, inspect_tokens, preview, stages_for
from workbench.data.loading import KIND_NAMES
from workbench.errors import WorkbenchError
from workbench.ui import background

SUPPORTED = list(access.DATASET_SUFFIXES)
SPAN_COLORS = {"trained": "#16a34a", "prompt (masked)": "#9ca3af"}


def sample_files() -> list[str]:
    return sorted(p.name for p in SAMPLES.iterdir() if p.suffix in SUPPORTED)


def listed_datasets() -> dict[str, Path]:
    """The datasets made here (ratings from the Chat tab), then the shipped samples, by a key that names no
    server path ("yours/<name>", "sample/<name>"): the picker's values."""
    collected = {f"yours/{path.name}": path for path in ratings.collected_datasets()}
    return collected | {f"sample/{name}": SAMPLES / name for name in sample_files()}


def dataset_choices() -> list[tuple[str, str]]:
    """The picker's (label, key) pairs."""
    return [(key.replace("/", " · ", 1), key) for key in listed_datasets()]


def build() -> dict[str, Any]:
    """Render the tab; returns the components other tabs read (the chosen dataset, kept on the server, and its
    stats)."""
    with gr.Row():
        upload = gr.File(label="Upload a dataset", file_types=SUPPORTED, type="filepath", elem_id="data-upload")
        with gr.Column():
            sample = gr.Dropdown(
                dataset_choices(),
                value=None,
                label="…or pick a sample or one of yours",
                info="Yours: preference pairs rated in the Chat tab's side-by-side mode",
                elem_id="data-sample",
            )
            # Shows the file's name; the path itself stays on the server (`dataset`), so no event of the page
            # takes a path from the browser.
            shown = gr.Textbox(label="Dataset file", interactive=False, elem_id="data-path")
            summary = gr.Markdown(elem_id="data-summary")
    error = gr.Markdown(elem_id="data-error")
    table = gr.Dataframe(label="First rows", wrap=True, max_height=320, elem_id="data-preview")
    example = gr.HighlightedText(
        label="First example as the model sees it: green tokens are trained, grey ones are masked",
        color_map=SPAN_COLORS,
        combine_adjacent=True,
        elem_id="data-example",
    )
    with gr.Row():
        histogram = gr.BarPlot(x="tokens", y="rows", title="Token lengths", height=240, elem_id="data-histogram")
        stats_md = gr.Markdown(elem_id="data-stats")
    stats = gr.State({})
    dataset = gr.State("")  # the chosen file's path, set by the upload and the picker, never sent by the browser
    return {
        "upload": upload,
        "sample": sample,
        "dataset": dataset,
        "outputs": [shown, summary, error, table, example, histogram, stats_md, stats],
    }


def wire(
    tab: dict[str, Any], model: gr.components.Component, cutoff: gr.components.Component, train_on_prompt, shown
) -> None:
    """Inspect whenever the file, the model or the cutoff changes; `shown` (the tab) refreshes the datasets."""
    inputs = [tab["dataset"], model, cutoff, train_on_prompt]
    tab["upload"].upload(lambda f: f or "", tab["upload"], tab["dataset"], api_visibility="private")
    tab["sample"].change(listed, tab["sample"], tab["dataset"], api_visibility="private")
    shown.select(lambda: gr.update(choices=dataset_choices()), None, tab["sample"], api_visibility="private")
    tab["dataset"].change(inspect, inputs, tab["outputs"], api_visibility="private")
    cutoff.blur(inspect, inputs, tab["outputs"], api_visibility="private")


def listed(key: str | None) -> str:
    """The path of a picked dataset (the picker only offers listed keys; Gradio refuses any other value)."""
    path = listed_datasets().get(key or "")
    return str(path) if path else ""


def inspect(path: str, model: str, cutoff: float, train_on_prompt: bool):
    """The first rows at once (read here, whatever the file's size), then from the helper process, which reads
    the whole file: every row checked and counted, then token statistics."""
    empty = gr.update()
    if not path:
        yield "", "", "", None, None, None, "", {}
        return
    try:
        # The dataset comes from the server's own state; checked again so no path reaches the readers unchecked.
        path = str(access.readable_dataset(path))
    except WorkbenchError as err:
        yield "", "", f"**{err}**", None, None, None, "", {}
        return
    name = Path(path).name
    spec = DatasetSpec(path=path)
    try:
        loaded, kind, rows = preview(spec)
    except WorkbenchError as err:
        yield name, "", f"**Cannot use this file.** {err}", None, None, None, "", {}
        return
    summary = _summary(path, loaded.format, kind, loaded.rows)
    yield name, summary, "", pd.DataFrame(rows), empty, empty, "Reading every row…", empty
    try:
        summary = _summary(path, loaded.format, kind, background.call(count_rows, spec))
    except WorkbenchError as err:  # a row past the first ones
        yield name, summary, f"**Cannot use this file.** {err}", empty, None, None, "", {}
        return
    yield name, summary, "", empty, empty, empty, "Counting tokens…", empty
    try:
        result = background.call(inspect_tokens, spec, model, int(cutoff), bool(train_on_prompt))
    except WorkbenchError as err:
        yield name, summary, f"**Cannot tokenize this file.** {err}", empty, None, None, "", {}
        return
    s = result["stats"]
    edges, counts = s["histogram_edges"], s["histogram_counts"]
    labels = [f"{int(edges[i])}–{int(edges[i + 1])}" for i in range(len(counts))]
    bars = gr.BarPlot(pd.DataFrame({"tokens": labels, "rows": counts}), sort=labels)  # bins in length order
    truncated = s["truncated_rows"] / max(s["rows"] + s["dropped_rows"], 1)
    text = (
        f"**{s['rows']}** rows · mean **{s['length_mean']:.0f}** tokens, median {s['length_median']:.0f}, "
        f"p90 {s['length_p90']:.0f}, longest {s['length_max']}  \n"
        f"**{truncated:.1%}** cut at {s['cutoff_len']} tokens · {s['dropped_rows']} dropped (nothing left to train) · "
        f"{s['trained_tokens']:,} of {s['total_tokens']:,} tokens trained"
    )
    yield name, summary, "", empty, result["example"], bars, text, {**s, "kind": kind}


def _summary(path: str, format: str, kind: str, rows: int | None) -> str:
    counted = f"**{rows:,}** rows" if rows is not None else f"first {PREVIEW_ROWS} rows shown, counting the rest…"
    return (
        f"**{Path(path).name}** · {KIND_NAMES[kind]} · format **{format}** · {counted}  \n"
        f"Trains with: **{', '.join(stages_for(kind))}** (pick the stage in the Train tab)"
    )
