"""The Data tab's mix: several datasets in one run, each with a share of the rows and an optional row limit
(`data.datasets[i].share` and `.max_samples`; how they combine: workbench/data/mixing.py).

The dataset shown above is added to the mix with its columns and placeholder values; once the mix holds a dataset,
the run trains on the mix. Its stats come from the helper process, which mixes and encodes every row as the worker
will.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, get_args

import gradio as gr
from pydantic import ValidationError

from workbench import access
from workbench.config import Answers, DataConfig, DatasetSpec
from workbench.data.inspect import inspect_mix
from workbench.data.mixing import describe
from workbench.errors import WorkbenchError
from workbench.ui import background, i18n
from workbench.ui.data_sources import shown_name
from workbench.ui.i18n import _

MAX_MIX = 4  # datasets the form takes; more go in the YAML


def build() -> dict[str, Any]:
    with gr.Accordion(_("Mix several datasets"), open=False, elem_id="data-mix"):
        gr.Markdown(
            _(
                "Train on several datasets at once, e.g. 80 % yours and 20 % general instructions to keep general "
                "skills. Add the dataset shown above, choose another and add it too, then give each its share. The "
                "run trains on the mix once it holds a dataset. Rows are drawn with the run's seed so that the mix "
                "holds the shares (how many rows in all: the Train tab's mix strategy)."
            )
        )
        add = gr.Button(_("Add this dataset to the mix"), elem_id="data-mix-add")
        rows, names, shares, limits, answers, removes = [], [], [], [], [], []
        for i in range(MAX_MIX):
            with gr.Row(visible=False, elem_id=f"data-mix-row-{i}") as row:
                names.append(gr.Textbox(label=_("dataset {number}", number=i + 1), interactive=False, scale=3,
                                        elem_id=f"data-mix-name-{i}"))  # fmt: skip
                shares.append(gr.Number(label=_("share (%)"), info=_("empty: an equal part of what is left"),
                                        minimum=0, maximum=100, elem_id=f"data-mix-share-{i}"))  # fmt: skip
                limits.append(gr.Number(label=_("row limit"), info=_("its first rows only; empty: all"), minimum=0,
                                        precision=0, elem_id=f"data-mix-limit-{i}"))  # fmt: skip
                answers.append(gr.Dropdown(list(get_args(Answers)), value="data", label=_("learn"),
                                           info=_("`data`: its replies; `base`: the base model's replies to its "
                                                  "prompts; `base_distribution`: the base model's distributions "
                                                  "along its replies"),
                                           elem_id=f"data-mix-answers-{i}"))  # fmt: skip
                removes.append(gr.Button(_("Remove"), scale=0, elem_id=f"data-mix-remove-{i}"))
            rows.append(row)
        summary = gr.Markdown(elem_id="data-mix-stats")
    return {
        "add": add,
        "rows": rows,
        "names": names,
        "shares": shares,
        "limits": limits,
        "answers": answers,
        "removes": removes,
        "summary": summary,
        "mix": gr.State([]),  # the datasets of the mix, as specs (path, columns, fill, share, max_samples, answers)
        "stats": gr.State({}),  # what the helper found of the mix, for the Train tab's estimate
    }


def wire(tab: dict[str, Any], model, cutoff, train_on_prompt, system_prompt, strategy, seed, language) -> None:
    """`tab`: the Data tab's components, this section's under "mix"; the others are the Train tab's fields the mix
    stats depend on, and the page's `language`. Also keeps the tab's "chosen" (what the run trains on) and
    "run_stats" up to date."""
    parts = tab["mix"]
    mix = parts["mix"]
    parts["add"].click(add, [tab["dataset"], mix, language], [mix, parts["summary"]], api_visibility="private")
    for i in range(MAX_MIX):
        for event in (parts["shares"][i].blur, parts["shares"][i].submit):
            event(_setter(i, "share"), [mix, parts["shares"][i]], mix, api_visibility="private")
        for event in (parts["limits"][i].blur, parts["limits"][i].submit):
            event(_setter(i, "max_samples"), [mix, parts["limits"][i]], mix, api_visibility="private")
        parts["answers"][i].input(_answers_setter(i), [mix, parts["answers"][i]], mix, api_visibility="private")
        parts["removes"][i].click(_remover(i), mix, mix, api_visibility="private")
    slots = [*parts["rows"], *parts["names"], *parts["shares"], *parts["limits"], *parts["answers"]]
    mix.change(show, [mix, *parts["names"]], slots, api_visibility="private")
    gr.on(
        [mix.change, cutoff.blur, system_prompt.blur, strategy.change, seed.blur, language.change],
        inspect_steps,
        [mix, model, cutoff, train_on_prompt, system_prompt, strategy, seed, language],
        [parts["summary"], parts["stats"]],
        concurrency_limit=1,
        trigger_mode="always_last",
        api_visibility="private",
    )
    gr.on([tab["dataset"].change, mix.change], chosen, [tab["dataset"], mix], tab["chosen"], api_visibility="private")
    gr.on(
        [tab["stats"].change, parts["stats"].change, mix.change],
        lambda one, mixed, specs: mixed if specs else one,
        [tab["stats"], parts["stats"], mix],
        tab["run_stats"],
        api_visibility="private",
    )


def chosen(dataset: dict[str, Any], mix: list[dict[str, Any]]) -> dict[str, Any] | list[dict[str, Any]]:
    """What the run trains on: the mix once it holds a dataset, else the dataset shown."""
    return mix if mix else dataset


def add(dataset: dict[str, Any], mix: list[dict[str, Any]], language: str | None = None) -> tuple[Any, str]:
    """The mix with the dataset shown added (with its columns and placeholder values), or why not."""
    t = i18n.translator(language)
    if not dataset or not dataset.get("path"):
        return gr.update(), t("**Choose a dataset above first**, then add it to the mix.")
    if len(mix) >= MAX_MIX:
        return gr.update(), t(
            "**The mix holds {count} datasets**, as many as this form takes; more go in the YAML.", count=MAX_MIX
        )
    if any(_same(spec, dataset) for spec in mix):
        return gr.update(), t("**This dataset is in the mix already.**")
    return [*mix, dict(dataset)], ""


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("path", "name", "split", "columns", "fill")
    return all(a.get(key) == b.get(key) for key in keys)


def _setter(index: int, key: str):
    def set_value(mix: list[dict[str, Any]], value: float | None) -> Any:
        if index >= len(mix):
            return gr.update()
        spec = {k: v for k, v in mix[index].items() if k != key}
        if value is not None and value > 0:
            spec[key] = min(float(value), 100.0) / 100 if key == "share" else int(value)
        if spec == mix[index]:
            return gr.update()
        return [*mix[:index], spec, *mix[index + 1 :]]

    return set_value


def _answers_setter(index: int):
    """What the dataset's rows teach: their replies, or the base model's (DatasetSpec.answers)."""

    def set_answers(mix: list[dict[str, Any]], answers: str) -> Any:
        if index >= len(mix):
            return gr.update()
        spec = {k: v for k, v in mix[index].items() if k != "answers"}
        if answers and answers != "data":
            spec["answers"] = answers
        return gr.update() if spec == mix[index] else [*mix[:index], spec, *mix[index + 1 :]]

    return set_answers


def _remover(index: int):
    def remove(mix: list[dict[str, Any]]) -> Any:
        return [*mix[:index], *mix[index + 1 :]] if index < len(mix) else gr.update()

    return remove


def label(spec: dict[str, Any]) -> str:
    """How a dataset of the mix is named: its file (or folder), and the entry or split chosen in it."""
    return shown_name(spec.get("path", ""), spec)


def show(mix: list[dict[str, Any]], *shown: str) -> list[Any]:
    """The form's slots for the mix: rows, names, shares (in %), row limits and what their replies teach. A slot
    that goes on showing the same dataset keeps its boxes as they are: one may be being typed in while the mix
    changes."""
    rows, names, shares, limits, answers = [], [], [], [], []
    for i in range(MAX_MIX):
        spec = mix[i] if i < len(mix) else None
        name = label(spec) if spec else ""
        rows.append(gr.update(visible=spec is not None))
        names.append(gr.update(value=name))
        answers.append(gr.update(value=spec.get("answers", "data") if spec else "data"))
        if i < len(shown) and shown[i] == name:
            shares.append(gr.update())
            limits.append(gr.update())
            continue
        share = spec.get("share") if spec else None
        shares.append(gr.update(value=round(share * 100, 2) if share is not None else None))
        limits.append(gr.update(value=spec.get("max_samples") if spec else None))
    return [*rows, *names, *shares, *limits, *answers]


def inspect_steps(
    mix: list[dict[str, Any]],
    model: str,
    cutoff: float,
    train_on_prompt: bool,
    system_prompt: str | None,
    strategy: str = "no_repeats",
    seed: float | None = 42,
    language: str | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """What the mix gives a run, as (markdown, stats for the Train tab): at once whether its settings hold, then from
    the helper process (which reads, mixes and encodes every row) the rows each dataset gives and token statistics."""
    t = i18n.translator(language)
    if not mix:
        yield "", {}
        return
    try:
        # The mix comes from the server's own state; checked again so no path reaches the readers unchecked.
        specs = [DatasetSpec(**{**spec, "path": str(access.readable_dataset(spec["path"]))}) for spec in mix]
        DataConfig(datasets=specs, mix_strategy=strategy)  # the shares add up
    except WorkbenchError as err:
        yield t("**Cannot use this mix.** {problem}", problem=t.error(err)), {}
        return
    except ValidationError as err:
        problem = t.message(err.errors()[0]["msg"].removeprefix("Value error, "))
        yield t("**Cannot use this mix:** {problem}.", problem=problem), {}
        return
    names = " · ".join(label(spec) for spec in mix)
    yield t("**Mix** of {names} · reading and mixing every row…", names=names), {}
    try:
        result = background.call(
            inspect_mix, specs, model, int(cutoff), bool(train_on_prompt), system_prompt or None, strategy,
            int(seed or 0),
        )  # fmt: skip
    except WorkbenchError as err:
        yield t("**Cannot use this mix.** {problem}", problem=t.error(err)), {}
        return
    s = result["stats"]
    text = t(
        "**Mix** · **{rows:,}** rows: {parts}  \n"
        "{trained:,} of {total:,} tokens trained · mean {mean:.0f} tokens, longest {longest} · cut at {cutoff} tokens",
        rows=s["rows"], parts=describe(result["parts"], t), trained=s["trained_tokens"], total=s["total_tokens"],
        mean=s["length_mean"], longest=s["length_max"], cutoff=s["cutoff_len"],
    )  # fmt: skip
    stats = {**s, "kind": result["kind"], "placeholders": result["placeholders"], "mix": result["parts"]}
    yield text, stats
