"""The Train form is the run config: its values validate into a RunConfig, and its CLI line rebuilds it."""

from __future__ import annotations

import shlex

import gradio as gr
import pytest

from tests.conftest import PRESETS, REPO
from workbench import methods, stages
from workbench.config import load_config, parse_config
from workbench.errors import ConfigError
from workbench.ui import train_tab


@pytest.fixture(scope="module")
def tab():
    with gr.Blocks():
        return train_tab.build()


def form_values(tab, method="lora", stage="sft", data=PRESETS / "data" / "identity.json", parent="", **changes):
    """The form's values as Gradio hands them to a handler, with some fields changed (by config path).

    Methods (and stages) share field names (method.init), so a field is changed only in the chosen one's group.
    """
    chosen = tab["method_fields"][method] + tab["stage_fields"][stage]
    values = [
        changes.get(f.path, f.component.value)
        if f.section not in ("method", "stage") or f in chosen
        else f.component.value
        for f in train_tab.all_fields(tab)
    ]
    return [tab["model"].value, stage, method, "", parent, {"path": str(data)}, *values]


def test_default_form_is_a_valid_config(tab):
    config = parse_config(train_tab.raw_config(tab, form_values(tab)))
    assert config.method.name == "lora"
    assert config.train.max_steps is None and config.train.threads is None  # "0: not set" comes back as None


def test_changed_fields_land_in_the_config(tab):
    raw = train_tab.raw_config(
        tab,
        form_values(
            tab,
            **{"train.max_steps": 12, "train.learning_rate": 1e-3, "method.target_modules": "q_proj, v_proj"},
        ),
    )
    config = parse_config(raw)
    assert (config.train.max_steps, config.train.learning_rate) == (12, 1e-3)
    assert config.method.target_modules == ["q_proj", "v_proj"]


def test_invalid_values_are_refused_naming_the_field(tab):
    with pytest.raises(ConfigError) as err:
        parse_config(train_tab.raw_config(tab, form_values(tab, **{"train.learning_rate": -1})))
    assert [p.field for p in err.value.problems] == ["train.learning_rate"]


@pytest.mark.parametrize("preset", [None, "sft-lora-identity"])
def test_cli_line_rebuilds_the_same_config(tab, preset):
    config = parse_config(
        train_tab.raw_config(tab, form_values(tab, **{"train.max_steps": 7, "data.cutoff_len": 200}))
    )
    words = shlex.split(train_tab._cli(config, preset).replace("\\\n", " "))
    assert words[:4] == ["python", "-m", "workbench", "train"]
    overrides = [words[i + 1] for i, word in enumerate(words) if word == "--set"]
    assert load_config(REPO / words[4], overrides) == config


def test_method_picker_lists_exactly_the_registry(tab):
    assert [value for _, value in tab["method"].choices] == methods.names()


@pytest.mark.parametrize("method", methods.names())
def test_each_methods_own_fields_make_its_config_and_cli_line(tab, method):
    config = parse_config(train_tab.raw_config(tab, form_values(tab, method, **{"train.max_steps": 3})))
    assert config.method == methods.get(method).params()  # the form's defaults are the method's defaults
    words = shlex.split(train_tab._cli(config, "sft-lora-identity").replace("\\\n", " "))
    overrides = [words[i + 1] for i, word in enumerate(words) if word == "--set"]
    assert load_config(REPO / words[4], overrides) == config  # switching from the preset's LoRA works


def test_stage_picker_lists_exactly_the_registry(tab):
    assert [value for _, value in tab["stage"].choices] == stages.names()


@pytest.mark.parametrize("stage", stages.names())
def test_each_stages_own_fields_make_its_config_and_cli_line(tab, stage):
    data = {"conversations": "identity.json", "prompts": "identity.json"}.get(
        stages.get(stage).data, "dpo_en_demo.json"
    )
    values = form_values(tab, stage=stage, data=PRESETS / "data" / data, **{"train.max_steps": 3})
    config = parse_config(train_tab.raw_config(tab, values))
    assert config.stage == stages.get(stage).params()  # the form's defaults are the stage's defaults
    words = shlex.split(train_tab._cli(config, "sft-lora-identity").replace("\\\n", " "))
    overrides = [words[i + 1] for i, word in enumerate(words) if word == "--set"]
    assert load_config(REPO / words[4], overrides) == config  # switching from the preset's SFT works


def test_changed_stage_fields_and_the_parent_run_land_in_the_config(tab):
    values = form_values(
        tab, stage="grpo", parent="20261122-000000-abcdef",
        **{"stage.rewards": ["format", "length"], "stage.target_length": 20, "stage.reward_model_run": ""},
    )  # fmt: skip
    config = parse_config(train_tab.raw_config(tab, values))
    assert config.stage.rewards == ["format", "length"] and config.stage.target_length == 20
    assert config.stage.reward_model_run is None
    assert config.model.parent_run == "20261122-000000-abcdef"


def test_the_estimate_is_for_the_device_the_helper_found(model_ref):
    # On a GPU machine the verdict is against the card's memory, not the host's (measured on an H200:
    # bench/results/gpu.json); on the CPU until the helper has said which device there is.
    from workbench.runs.preflight import MethodReport

    config = load_config(PRESETS / "sft-lora-identity.yaml")
    stats = {"rows": 91, "total_tokens": 91 * 40}
    on_cpu = train_tab._estimate_text(config, stats)
    h200 = MethodReport(1_000, 135_000_000, "cuda", [], device_memory_mb=143_771.0)
    on_gpu = train_tab._estimate_text(config, stats, 1_000, h200)
    assert "of 140.4 GiB" in on_gpu and "of 140.4 GiB" not in on_cpu


def test_the_trackers_are_a_multiple_choice_with_tensorboard_on(tab):
    (field,) = [f for f in train_tab.all_fields(tab) if f.path == "train.report_to"]
    assert field.choices == ("tensorboard", "trackio", "wandb", "mlflow") and field.component.value == ["tensorboard"]
    config = parse_config(train_tab.raw_config(tab, form_values(tab, **{"train.report_to": ["tensorboard", "wandb"]})))
    assert config.train.report_to == ["tensorboard", "wandb"]
    assert parse_config(train_tab.raw_config(tab, form_values(tab, **{"train.report_to": []}))).train.report_to == []


def test_a_tracker_that_is_not_set_up_stops_start_naming_what_to_do(tab, tiny_model, monkeypatch, tmp_path):
    # What Start and the form's checks do (in the helper process): the pre-flight report lists it by its field.
    import importlib.util

    from workbench.runs import preflight

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no `wandb login` either
    values = form_values(tab, **{"train.report_to": ["tensorboard", "wandb", "mlflow"]})
    values[0] = str(tiny_model)
    report = preflight.method_report(parse_config(train_tab.raw_config(tab, values)), tiny_model)
    shown = train_tab._blocking(report.problems)
    assert shown.startswith("**Cannot train this on this machine:**")
    wandb = "set WANDB_API_KEY" if real("wandb") else "pip install wandb"
    assert "train.report_to: W&B needs" in shown and wandb in shown
    assert "train.report_to: MLflow needs `mlflow`, which is not installed: pip install mlflow" in shown
    assert "TensorBoard" not in shown


@pytest.mark.parametrize("preset", [None, "sft-lora-identity"])
def test_the_data_tabs_columns_fill_and_system_prompt_make_the_config_and_cli_line(tab, preset):
    values = form_values(tab, **{"data.system_prompt": "You help customers of a bakery."})
    values[5] = {
        "path": str(PRESETS / "data" / "identity.json"),
        "columns": {"prompt": "instruction", "response": "output", "query": ""},
        "fill": {"name": "Zorblax"},
    }
    config = parse_config(train_tab.raw_config(tab, values))
    spec = config.data.datasets[0]
    assert (spec.columns["query"], spec.fill, config.data.system_prompt) == (
        "",
        {"name": "Zorblax"},
        "You help customers of a bakery.",
    )
    line = train_tab._cli(config, preset).replace("\\\n", " ")
    # Field by field over a preset of one dataset; whole over one with more (the identity preset's replay).
    expected = "--set data.datasets.0.columns.prompt=instruction" if preset is None else "--set 'data.datasets=[{"
    assert expected in line
    words = shlex.split(line)
    overrides = [words[i + 1] for i, word in enumerate(words) if word == "--set"]
    assert load_config(REPO / words[4], overrides) == config  # the preset's own fill is replaced, not merged


def test_a_mix_from_the_data_tab_is_the_runs_datasets_and_its_cli_line_rebuilds_it(tab):
    mix = [
        {"path": str(PRESETS / "data" / "identity.json"), "share": 0.8, "fill": {"name": "Ada"}},
        {"path": str(PRESETS / "data" / "alpaca_en_demo.json"), "share": 0.2, "max_samples": 100},
    ]
    values = form_values(tab, **{"data.mix_strategy": "every_row"})
    values[5] = mix  # the Data tab's choice: the mix, not one dataset
    config = parse_config(train_tab.raw_config(tab, values))
    assert [(d.share, d.max_samples) for d in config.data.datasets] == [(0.8, None), (0.2, 100)]
    assert config.data.mix_strategy == "every_row"
    cli = train_tab._cli(config, "sft-lora-identity")
    assert "--set data.datasets.1.share=0.2" in cli and "data.datasets.1.format" not in cli  # no defaults said
    words = shlex.split(cli.replace("\\\n", " "))
    overrides = [words[i + 1] for i, word in enumerate(words) if word == "--set"]
    assert load_config(REPO / words[4], overrides) == config


def test_the_estimate_counts_the_steps_of_the_mix(tab):
    settings = [
        "train.num_train_epochs=2",
        "train.per_device_train_batch_size=4",
        "train.gradient_accumulation_steps=1",
    ]
    config = load_config(PRESETS / "sft-lora-identity.yaml", settings)
    # The Data tab's stats of an 80/20 mix of 4 + 1 rows: 5 rows, batch 4, 2 epochs.
    stats = {"rows": 5, "total_tokens": 5 * 40, "mix": [{"file": "faq.csv", "share": 0.8, "rows": 4, "pool": 4}]}
    assert "· 4 steps ≈" in train_tab._estimate_text(config, stats)
