"""The Train tab: model, method and hyperparameters (generated from the run config), presets, the equivalent
YAML and CLI command, a pre-flight estimate, and Start; in the page's language (`workbench/ui/i18n.py`)."""

from __future__ import annotations

import functools
import os
import shlex
from pathlib import Path
from typing import Any

import gradio as gr
import yaml

from workbench import access, home, methods, models, stages
from workbench.config import DataConfig, DatasetSpec, TrainConfig, dump_config, load_config, parse_config
from workbench.data.inspect import SERVES, stages_for
from workbench.data.loading import KIND_NAMES
from workbench.errors import ConfigError, WorkbenchError
from workbench.estimate import estimate
from workbench.models import PRESETS
from workbench.runs import preflight
from workbench.runs.store import JobStore
from workbench.runs.submission import submit
from workbench.ui import background, i18n
from workbench.ui.form import FormField, build_fields, collect, component_value
from workbench.ui.i18n import EN, Translator, _, static
from workbench.ui.runs_tab import run_choices

BASIC_TRAIN = ["num_train_epochs", "max_steps", "learning_rate", "per_device_train_batch_size"]
BASIC_DATA = ["cutoff_len", "system_prompt"]
DEFAULT_MODEL = next(iter(models.bundled_models()))
DEFAULT_PRESET = "sft-lora-smollm2"  # the base of the CLI command until a preset is loaded
ROW_WIDTH = 6  # fields per row in "Advanced": wide enough to read each help text


def preset_paths() -> dict[str, Path]:
    """Shipped presets, then the user's own (saved from this tab) under the data directory."""
    found = {p.stem: p for p in sorted(PRESETS.glob("*.yaml")) if p.name != "models.yaml"}
    found.update({p.stem: p for p in sorted(user_presets_dir().glob("*.yaml"))})
    return found


def user_presets_dir() -> Path:
    path = home.home() / "presets"
    path.mkdir(exist_ok=True)
    return path


def build() -> dict[str, Any]:
    train_defaults = TrainConfig()
    data_defaults = DataConfig(datasets=[DatasetSpec(path="-")])
    with gr.Row():
        model = gr.Dropdown(
            list(models.bundled_models()),
            value=DEFAULT_MODEL,
            allow_custom_value=True,
            label=_("Model"),
            info=_("A bundled model, a local model folder, or a hub id (org/name)"),
            elem_id="train-model",
        )
        stage = gr.Dropdown(
            [(_(stages.get(n).title), n) for n in stages.names()],
            value="sft",
            label=_("Stage"),
            info=_("What to learn, and so what data it needs"),
            elem_id="train-stage",
        )
        method = gr.Dropdown(
            [(_(methods.get(n).title), n) for n in methods.names()],
            value="lora",
            label=_("Method"),
            elem_id="train-method",
        )
        name = gr.Textbox(label=_("Run name"), placeholder=_("optional"), elem_id="train-name")
    with gr.Row():
        parent = gr.Dropdown(
            [(_("the base model"), "")],  # the finished runs come on page load: the login page names no run
            value="",
            label=_("Start from"),
            info=_("The base model, or a finished run to go on from (SFT → DPO): its adapter keeps training"),
            elem_id="train-parent",
        )
        stage_info = gr.Markdown(static(lambda t: _stage_info("sft", t)), elem_id="train-stage-info")
    stage_fields, stage_groups = _choice_groups("stage", stages, "sft")
    with gr.Row():
        method_info = gr.Markdown(static(lambda t: _method_info("lora", t)), elem_id="train-method-info")
        method_count = gr.Markdown(elem_id="train-method-params")
    method_fields, groups = _choice_groups("method", methods, "lora")
    with gr.Row():
        fields = build_fields("train", TrainConfig, train_defaults, names=BASIC_TRAIN)
        fields += build_fields("data", DataConfig, data_defaults, names=BASIC_DATA)
    with gr.Accordion(_("Advanced"), open=False):
        advanced = [n for n in TrainConfig.model_fields if n not in (*BASIC_TRAIN, "stage")]
        for start in range(0, len(advanced), ROW_WIDTH):
            with gr.Row():
                fields += build_fields("train", TrainConfig, train_defaults, names=advanced[start : start + ROW_WIDTH])
        with gr.Row():
            fields += build_fields("data", DataConfig, data_defaults, skip=(*BASIC_DATA, "datasets"))
    estimate_md = gr.Markdown(elem_id="train-estimate")
    errors = gr.Markdown(elem_id="train-errors")
    with gr.Row():
        start = gr.Button(_("Start training"), variant="primary", elem_id="train-start")
    with gr.Accordion(_("Presets, YAML and command line"), open=False):
        with gr.Row():
            preset = gr.Dropdown(list(preset_paths()), label=_("Preset"), elem_id="train-preset")
            load = gr.Button(_("Load preset"))
            preset_name = gr.Textbox(label=_("Save as"), placeholder="my-preset")
            save = gr.Button(_("Save preset"))
        yaml_view = gr.Code(language="yaml", label=_("Run config (YAML)"), elem_id="train-yaml")
        cli_view = gr.Code(language="shell", label=_("The same run from the command line"), elem_id="train-cli")
    return {
        "model": model,
        "method": method,
        "stage": stage,
        "parent": parent,
        "name": name,
        "stage_info": stage_info,
        "stage_fields": stage_fields,
        "stage_groups": stage_groups,
        "method_info": method_info,
        "method_count": method_count,
        "method_fields": method_fields,
        "groups": groups,
        "fields": fields,
        "estimate": estimate_md,
        "errors": errors,
        "start": start,
        "preset": preset,
        "load": load,
        "preset_name": preset_name,
        "save": save,
        "yaml": yaml_view,
        "cli": cli_view,
        "cutoff": next(f.component for f in fields if f.path == "data.cutoff_len"),
        "train_on_prompt": next(f.component for f in fields if f.path == "data.train_on_prompt"),
        "system_prompt": next(f.component for f in fields if f.path == "data.system_prompt"),
    }


def _choice_groups(section: str, registry, default: str) -> tuple[dict[str, list[FormField]], dict[str, Any]]:
    """One group of fields per registered name (methods, stages), only the chosen one visible."""
    fields: dict[str, list[FormField]] = {}
    groups = {}
    for name in registry.names():
        params = registry.get(name).params
        with gr.Group(visible=name == default) as groups[name]:
            with gr.Row():
                fields[name] = build_fields(section, params, params(), skip=("name",), id_prefix=f"{section}-{name}")
    return fields, groups


def parent_choices(t: Translator = EN) -> list[tuple[str, str]]:
    """Finished runs a new run can start from (reward models serve as rewards, not as starting points)."""
    jobs = [job for job in JobStore().list() if job.state == "finished"]
    runs = []
    for job in jobs:
        config = job.files.read_config()
        if stages.get(config.stage.name).head == "causal_lm" and job.files.artifact_kind() != "bottleneck":
            runs.append((f"{job.id} · {config.stage.name} · {job.method} · {job.name or ''}".rstrip(" ·"), job.id))
    return [(t("the base model"), ""), *runs]


def reward_run_choices(t: Translator = EN) -> list[tuple[str, str]]:
    jobs = [job for job in JobStore().list() if job.state == "finished"]
    runs = [(f"{job.id} · {job.name or job.method}", job.id) for job in jobs
            if job.files.read_config().stage.name == "reward"]  # fmt: skip
    return [(t("none"), ""), *runs]


def field(tab: dict[str, Any], path: str) -> gr.components.Component:
    """The form's component for a config field, by its dotted path (`train.seed`)."""
    return next(f.component for f in tab["fields"] if f.path == path)


# The form's leading values, before the dataset (the Data tab's spec) and the generated fields.
LEADING = ("model", "stage", "method", "name", "parent")


def all_fields(tab: dict[str, Any]) -> list[FormField]:
    return (
        tab["fields"]
        + [f for fs in tab["stage_fields"].values() for f in fs]
        + [f for fs in tab["method_fields"].values() for f in fs]
    )


def raw_config(tab: dict[str, Any], values: list[Any]) -> dict[str, Any]:
    """The form's values as a raw config dict (not yet validated)."""
    model, stage, method, name, parent, dataset, *rest = values
    fields = all_fields(tab)
    chosen = tab["stage_fields"].get(stage, []) + tab["method_fields"].get(method, [])
    # Methods (and stages) share field names (init, beta): take their sections from the chosen one's fields only.
    pairs = [(f, v) for f, v in zip(fields, rest, strict=True) if f.section not in ("method", "stage") or f in chosen]
    sections = collect([f for f, _ in pairs], [v for _, v in pairs])
    data = sections["data"] | {"datasets": _datasets(dataset)}
    return {
        "name": name or None,
        "model": {"name_or_path": model, "parent_run": parent or None},
        "data": data,
        "stage": {"name": stage, **sections.get("stage", {})},
        "method": {"name": method, **sections.get("method", {})},
        "train": sections["train"],
    }


def _datasets(chosen: dict[str, Any] | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The Data tab's choice as the run's datasets: one dataset, or the datasets of a mix."""
    specs = chosen if isinstance(chosen, list) else [chosen] if chosen else []
    return [dict(spec) for spec in specs if spec and spec.get("path")]


def run_pickers(tab: dict[str, Any]) -> list[gr.components.Component]:
    """The pickers that offer runs: the run to start from, and each stage's reward-model run."""
    rewards = [f.component for f in all_fields(tab) if f.section == "stage" and f.name == "reward_model_run"]
    return [tab["parent"], *rewards]


def offered_runs(tab: dict[str, Any], language: str | None = None) -> list[dict[str, Any]]:
    """Updates of `run_pickers(tab)` with the runs there are now, named in the page's `language`."""
    t = i18n.translator(language)
    rewards = reward_run_choices(t)
    return [gr.update(choices=parent_choices(t))] + [gr.update(choices=rewards)] * (len(run_pickers(tab)) - 1)


def wire(tab: dict[str, Any], dataset, stats_state, tabs, runs_selector, shown, language, shown_dataset=None,
         mix=None) -> None:  # fmt: skip
    """`dataset`: what the Data tab chose to train on (a server-side state: a dataset's path, columns and placeholder
    values, or a list of them, a mix); `shown`: the Train tab itself, whose selection refreshes the runs one can
    start from or score with; `language`: the page's, which what the tab says follows. A preset sets the Data tab's
    `shown_dataset` (its first dataset) and its `mix` (all of them, when it has several)."""
    fields = all_fields(tab)
    shown.select(lambda language: offered_runs(tab, language), language, run_pickers(tab), api_visibility="private")
    leading = [tab[name] for name in LEADING]
    inputs = [*leading, dataset, *[f.component for f in fields]]
    method_names, stage_names = methods.names(), stages.names()

    def show_method(method: str, language: str | None):
        t = i18n.translator(language)
        return [gr.update(visible=n == method) for n in method_names] + [_method_info(method, t)]

    method_outputs = [*(tab["groups"][n] for n in method_names), tab["method_info"]]
    gr.on(
        [tab["method"].change, language.change],
        show_method,
        [tab["method"], language],
        method_outputs,
        api_visibility="private",
    )

    def show_stage(stage: str, language: str | None):
        t = i18n.translator(language)
        return [gr.update(visible=n == stage) for n in stage_names] + [_stage_info(stage, t)]

    stage_outputs = [*(tab["stage_groups"][n] for n in stage_names), tab["stage_info"]]
    gr.on(
        [tab["stage"].change, language.change],
        show_stage,
        [tab["stage"], language],
        stage_outputs,
        api_visibility="private",
    )

    def preview(*values):
        *form, stats, preset, language = values
        t = i18n.translator(language)
        raw = raw_config(tab, form)
        try:
            config = parse_config(raw)
        except ConfigError as err:
            yield _problems(err, t), "", "", "", ""
            return
        shown = dump_config(config), _cli(config, preset)
        folder = models.local_folder(config.model.name_or_path)
        mismatch = _data_warnings(config, stats or {}, t)
        if folder is None:
            count = t("_Parameter count: once the model is here._")
            yield mismatch, *shown, _estimate_text(config, stats or {}, t=t), count
            return
        yield mismatch, *shown, gr.update(), t("_Counting trainable parameters…_")
        try:
            report = background.call(preflight.method_report, config, folder)
        except Exception as err:  # noqa: BLE001  a count must never break the form
            count = t("_No parameter count: {problem}_", problem=t.error(err))
            yield "", *shown, _estimate_text(config, stats or {}, t=t), count
            return
        estimate_text = _estimate_text(config, stats or {}, report.trainable, report, t)
        warnings = [_data_warnings(config, stats or {}, t), _blocking(report.problems, t)]
        yield "\n\n".join(w for w in warnings if w), *shown, estimate_text, _count_text(report, t)

    outputs = [tab["errors"], tab["yaml"], tab["cli"], tab["estimate"], tab["method_count"]]
    # One event for every field (not one per field: each would be an endpoint of its own, and hundreds slow
    # the app's start); one preview at a time, the latest last, so a slow earlier one cannot overwrite it.
    gr.on(
        [component.change for component in [*inputs, stats_state, language]],
        preview,
        [*inputs, stats_state, tab["preset"], language],
        outputs,
        concurrency_limit=1,
        trigger_mode="always_last",
        show_progress="hidden",
        api_visibility="private",
    )

    def start(*values):
        *values, language = values
        t = i18n.translator(language)
        raw = raw_config(tab, list(values))
        try:
            config = parse_config(raw)
            for spec in config.data.datasets:
                access.readable_dataset(spec.path)  # the form's dataset is the server's own state; checked again
            folder = models.local_folder(config.model.name_or_path)
            if folder is not None:  # a hub model is checked by the worker once it is downloaded
                report = background.call(preflight.method_report, config, folder)
                if report.problems:
                    return _blocking(report.problems, t), gr.update(), gr.update()
                device = report.device
            else:
                device = background.call(preflight.this_device)
            # In the helper process: submitting reads every row of the data, which must not swell this process.
            # The worker gets this process's environment: the helper's own has changed as it imported torch.
            job = background.call(functools.partial(submit, device=device, env=dict(os.environ)), config)
        except ConfigError as err:
            return _problems(err, t), gr.update(), gr.update()
        except WorkbenchError as err:
            return t("**Cannot start:** {problem}", problem=t.error(err)), gr.update(), gr.update()
        runs = gr.update(choices=run_choices(t), value=job.id)
        return t("Started run `{run}`.", run=job.id), gr.Tabs(selected="runs"), runs

    tab["start"].click(start, [*inputs, language], [tab["errors"], tabs, runs_selector], api_visibility="private")

    def load_preset(preset: str, language: str | None):
        t = i18n.translator(language)
        try:
            config = load_config(preset_paths()[preset])
        except (KeyError, ConfigError) as err:
            problem = t("**Cannot load preset:** {problem}", problem=t.error(err))
            return [problem] + [gr.update()] * (len(fields) + len(LEADING) + 1 + (mix is not None))
        dump = config.model_dump()
        chosen = tab["stage_fields"][config.stage.name] + tab["method_fields"][config.method.name]
        values = [
            component_value(f, dump[f.section][f.name])
            if f.section not in ("method", "stage") or f in chosen
            else gr.update()
            for f in fields
        ]
        # The first dataset as the Data tab keeps it: its path, and its columns and placeholder values if set.
        spec = config.data.datasets[0].model_dump(exclude_defaults=True)
        leading = [config.model.name_or_path, config.stage.name, config.method.name, config.name or "", ""]
        return ["", *leading, spec, *values, *_preset_mix(config, mix)]

    tab["load"].click(
        load_preset,
        [tab["preset"], language],
        [tab["errors"], *leading, shown_dataset or dataset, *[f.component for f in fields], *([mix] if mix else [])],
        api_visibility="private",
    )

    def save_preset(preset_name: str, language: str | None, *values):
        t = i18n.translator(language)
        raw = raw_config(tab, list(values))
        try:
            config = parse_config(raw)
        except ConfigError as err:
            return _problems(err, t), gr.update()
        safe = "".join(c for c in preset_name if c.isalnum() or c in "-_") or "my-preset"
        (user_presets_dir() / f"{safe}.yaml").write_text(dump_config(config), encoding="utf-8")
        return t("Saved preset `{preset}`.", preset=safe), gr.update(choices=list(preset_paths()), value=safe)

    tab["save"].click(
        save_preset,
        [tab["preset_name"], language, *inputs],
        [tab["errors"], tab["preset"]],
        api_visibility="private",
    )


def _preset_mix(config, mix) -> list[Any]:
    """The Data tab's mix for a preset: its datasets when it has several, else none (its dataset alone)."""
    if mix is None:
        return []
    specs = config.data.datasets
    return [[spec.model_dump(exclude_defaults=True) for spec in specs] if len(specs) > 1 else []]


def _problems(err: ConfigError, t: Translator = EN) -> str:
    lines = "\n".join(
        t("- **dataset**: choose one in the Data tab")
        if p.field == "data.datasets"
        else t("- **{field}**: {problem}", field=p.field or t("config"), problem=t.message(p.message))
        for p in err.problems
    )
    return t("**Please fix these settings:**\n{problems}", problems=lines)


def _cli(config, preset: str | None) -> str:
    """The command that starts this run: a preset plus `--set` for every field the form changed."""
    presets = preset_paths()
    base_name = preset if preset in presets else DEFAULT_PRESET
    base = load_config(presets[base_name]).model_dump(mode="json")
    here = _added_datasets_short(config.model_dump(mode="json"), config, len(base["data"]["datasets"]))
    flat_base, flat_here = _flat(base), _flat(here)
    # A mapping that lost keys the preset has (columns, fill) is set whole: `--set` can add a key, not remove one.
    whole = {key.rpartition(".")[0] for key in flat_base if key not in flat_here and "." in key}
    whole = {key for key in whole if key.rpartition(".")[2] in _MAPPINGS and isinstance(_dotted(here, key), dict)}
    # Fewer datasets than the preset (its replay dataset taken out): `--set` cannot remove one, so the list is set
    # whole, each dataset by its own settings.
    if len(config.data.datasets) < len(base["data"]["datasets"]):
        whole = {key for key in whole if not key.startswith("data.datasets.")} | {"data.datasets"}
        here["data"]["datasets"] = [s.model_dump(mode="json", exclude_defaults=True) for s in config.data.datasets]
    changes = [shlex.quote(f"{key}={_yaml_value(_dotted(here, key))}") for key in sorted(whole)]
    changes += [
        shlex.quote(f"{key}={_yaml_value(value)}")
        for key, value in flat_here.items()
        if flat_base.get(key) != value and not any(key.startswith(f"{w}.") for w in whole)
    ]
    path = presets[base_name]
    shown = path.relative_to(PRESETS.parent) if path.is_relative_to(PRESETS.parent) else path
    return " \\\n  ".join([f"python -m workbench train {shown}", *(f"--set {c}" for c in changes)])


def _added_datasets_short(here: dict[str, Any], config, kept: int) -> dict[str, Any]:
    """`here` with the datasets past the preset's first `kept` ones written by their own settings only: `--set`
    adds such a dataset field by field, and its defaults need no saying."""
    datasets = here["data"]["datasets"]
    short = [spec.model_dump(mode="json", exclude_defaults=True) for spec in config.data.datasets[kept:]]
    return {**here, "data": {**here["data"], "datasets": datasets[:kept] + short}}


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                flat.update(_flat(item, f"{prefix}{key}.{i}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# Config fields that map free names to values (a dataset's columns, placeholder values, sharegpt tags).
_MAPPINGS = ("columns", "fill", "tags")


def _dotted(tree: Any, key: str) -> Any:
    for part in key.split("."):
        if isinstance(tree, list) and part.isdigit() and int(part) < len(tree):
            tree = tree[int(part)]
        elif isinstance(tree, dict) and part in tree:
            tree = tree[part]
        else:
            return None
    return tree


def _yaml_value(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _stage_info(name: str, t: Translator = EN) -> str:
    spec = stages.get(name)
    return t(
        "**{title}**: {description} _Data: {needs}._",
        title=t(spec.title), description=t(spec.description), needs=t(DATA_NEEDS[spec.data]),
    )  # fmt: skip


DATA_NEEDS = {
    "conversations": "conversations (alpaca, sharegpt or OpenAI messages)",
    "pairs": "preference pairs (prompt, chosen, rejected)",
    "labeled": "replies with a true/false label, or preference pairs",
    "prompts": "prompts (a prompt column, with an answer column for answer rewards), or conversations",
    "text": "raw text (.txt files, or a text column)",
}


def _method_info(name: str, t: Translator = EN) -> str:
    spec = methods.get(name)
    return t(
        "**{title}** ({family}): {description}",
        title=t(spec.title), family=t(spec.family), description=t(spec.description),
    )  # fmt: skip


def _count_text(report: preflight.MethodReport, t: Translator = EN) -> str:
    return t(
        "**{trainable:,}** trainable parameters of {total:,} (**{share:.4%}**)",
        trainable=report.trainable, total=report.total, share=report.share,
    )  # fmt: skip


def _data_warnings(config, stats: dict[str, Any], t: Translator = EN) -> str:
    """Say at once when the Data tab's dataset is not what the chosen stage trains on (Start refuses it too), and
    when its placeholders have no value (Start trains them as written)."""
    kind = stats.get("kind")
    stage = stages.get(config.stage.name)
    warnings = []
    if kind is not None and stage.data not in SERVES[kind]:
        warnings.append(
            t(
                "**The dataset holds {kind}; {stage} needs {needs}.** Stages that train on it: {stages}.",
                kind=t(KIND_NAMES[kind]), stage=t(stage.title), needs=t(DATA_NEEDS[stage.data]),
                stages=", ".join(t(title) for title in stages_for(kind)),
            )
        )  # fmt: skip
    filled = config.data.datasets[0].fill if config.data.datasets else {}
    unfilled = [name for name in stats.get("placeholders", []) if name not in filled]
    if unfilled:
        names = ", ".join(f"{{{{{name}}}}}" for name in unfilled)
        warnings.append(
            t(
                "**Placeholders without a value: {names}.** The model would learn them as written: give their "
                "values in the Data tab.",
                names=names,
            )
        )
    return "\n\n".join(warnings)


def _blocking(problems: list[str], t: Translator = EN) -> str:
    if not problems:
        return ""
    return t("**Cannot train this on this machine:**") + "\n" + "\n".join(f"- {t.message(p)}" for p in problems)


def _estimate_text(
    config, stats: dict[str, Any], trainable: int | None = None, report=None, t: Translator = EN
) -> str:
    """The estimate for this machine: on its GPU, against the card's memory, once the helper has said which
    device there is (`report`, a preflight.MethodReport); on the CPU until then."""
    folder = models.local_folder(config.model.name_or_path)
    if folder is None:
        return t("_Estimate: available once the model is on this machine._")
    if stats.get("rows"):
        mean = stats["total_tokens"] / stats["rows"]  # after truncation at the cutoff the stats were made with
    else:
        mean = 256  # a typical instruction example, until a dataset is inspected
    mean = min(mean, config.data.cutoff_len)
    try:
        on_gpu = report is not None and report.device == "cuda"
        e = estimate(
            config,
            folder,
            mean,
            device="cuda" if on_gpu else "cpu",
            available_memory_mb=report.device_memory_mb if on_gpu else None,
            dataset_rows=stats.get("rows"),
            trainable_params=trainable,
        )
    except Exception as err:  # noqa: BLE001  an estimate must never break the form
        return t("_No estimate: {problem}_", problem=t.error(err))
    verdict = t({"fits": "Fits", "tight": "Tight", "will-not-fit": "Will not fit"}[e.verdict])
    if e.total_seconds:
        total = t("{steps} steps ≈ {minutes:.0f} min", steps=e.total_steps, minutes=e.total_seconds / 60)
    else:
        total = t("total: pick a dataset")
    advice = "  \n".join(t.message(line) for line in e.advice.splitlines() if line)
    text = t(
        "**{verdict}** · peak memory ~{peak:.1f} GiB of {available:.1f} GiB · ~{seconds:.1f} s/step · {total} · "
        "trainable {trainable:,} ({share:.2%}) of {params:,} parameters",
        verdict=verdict, peak=e.peak_memory_mb / 1024, available=e.available_memory_mb / 1024,
        seconds=e.seconds_per_step, total=total, trainable=e.trainable_params, share=e.trainable_share,
        params=e.total_params,
    )  # fmt: skip
    return text + (f"  \n{advice}" if advice else "")
