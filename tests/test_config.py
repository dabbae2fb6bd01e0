"""The run config: presets, YAML round trips, CLI-style overrides and error messages that name the field."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import PRESETS
from workbench import methods
from workbench.config import RunConfig, apply_overrides, dump_config, load_config, parse_config
from workbench.errors import ConfigError

MINIMAL = {"data": {"datasets": [{"path": "train.json"}]}}


@pytest.mark.parametrize("preset", sorted(p.name for p in PRESETS.glob("*.yaml") if p.name != "models.yaml"))
def test_every_preset_validates_and_its_data_loads_for_its_stage(preset):
    from workbench import stages
    from workbench.data import load_for

    config = load_config(PRESETS / preset)
    assert config.method.name in methods.names()
    for spec in config.data.datasets:
        assert spec.path.startswith(str(PRESETS))
        assert load_for(stages.get(config.stage.name).data, spec).rows > 0


def test_yaml_round_trip_is_lossless(tmp_path):
    config = load_config(PRESETS / "sft-lora-smollm2.yaml")
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(config))
    assert load_config(path) == config


def test_overrides_set_nested_fields_with_yaml_types():
    config = parse_config(
        apply_overrides(MINIMAL, ["train.max_steps=4", "train.learning_rate=1e-4", "method.target_modules=[q_proj]"])
    )
    assert config.train.max_steps == 4
    assert config.train.learning_rate == 1e-4
    assert config.method.target_modules == ["q_proj"]


def test_override_can_index_dataset_list():
    raw = apply_overrides(MINIMAL, ["data.datasets.0.path=other.json"])
    assert parse_config(raw).data.datasets[0].path == "other.json"


@pytest.mark.parametrize(
    ("raw_update", "field", "words"),
    [
        ({"method": {"name": "magic"}}, "method", ["unknown method 'magic'", "lora"]),
        ({"train": {"learning_rate": -1}}, "train.learning_rate", ["greater than 0", "-1"]),
        ({"train": {"lr_scheduler_type": "zigzag"}}, "train.lr_scheduler_type", ["'cosine'", "zigzag"]),
        ({"train": {"learnig_rate": 1e-4}}, "train.learnig_rate", ["unknown setting"]),
        ({"method": {"name": "lora", "r": 0}}, "method.r", ["greater than or equal to 1"]),
        ({"data": {"datasets": []}}, "data.datasets", ["at least 1"]),
        ({"data": {"datasets": [{"path": "x.json"}], "val_size": 1.5}}, "data.val_size", ["less than 1"]),
    ],
)
def test_bad_settings_name_the_field_and_the_value(raw_update, field, words):
    with pytest.raises(ConfigError) as err:
        parse_config({**MINIMAL, **raw_update})
    fields = [p.field for p in err.value.problems]
    assert field in fields
    message = str(err.value)
    for word in words:
        assert word in message


def test_all_problems_are_reported_together():
    raw = {**MINIMAL, "train": {"learning_rate": -1, "per_device_train_batch_size": 0}, "method": {"r": -2}}
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert {p.field for p in err.value.problems} == {
        "train.learning_rate",
        "train.per_device_train_batch_size",
        "method.r",
    }


def test_eval_steps_without_validation_split_is_refused():
    with pytest.raises(ConfigError, match="val_size"):
        parse_config({**MINIMAL, "train": {"eval_steps": 5}})


@pytest.mark.parametrize(
    ("update", "words"),
    [
        ({"train": {"early_stopping_patience": 2}}, ["train.early_stopping_patience", "no validation data"]),
        ({"train": {"keep_best": True}}, ["train.keep_best needs validation data"]),
        (
            {"data": {"datasets": [{"path": "x.json", "use": "validation"}]}},
            ["give at least one with use: train"],
        ),
        (
            {"data": {"datasets": [{"path": "x.json"}, {"path": "t.json", "use": "test"}], "test_size": 0.1}},
            ["data.test_size is set and a dataset has use: test"],
        ),
        ({"data": {"datasets": [{"path": "x.json"}], "test_size": 0.1}, "stage": {"name": "dpo"}}, ["test set"]),
    ],
)
def test_splits_and_early_stopping_settings_that_do_not_fit_are_refused(update, words):
    with pytest.raises(ConfigError) as err:
        parse_config({**MINIMAL, **update})
    for word in words:
        assert word in str(err.value)


def test_a_validation_dataset_allows_early_stopping_which_keeps_the_best():
    from workbench.training import best

    data = {"datasets": [{"path": "x.json"}, {"path": "v.json", "use": "validation"}]}
    config = parse_config({**MINIMAL, "data": data, "train": {"early_stopping_patience": 3, "eval_steps": 10}})
    assert config.data.has_validation() and not config.data.has_test() and config.train.keeps_best()
    args = best.arguments(config.train, has_eval=True)
    # Saved at every evaluation, so that the best step has a checkpoint to go back to.
    assert args["save_steps"] == args["eval_steps"] == 10 and args["load_best_model_at_end"]
    assert args["metric_for_best_model"] == "eval_loss"
    assert best.arguments(parse_config(MINIMAL).train, has_eval=False)["eval_strategy"] == "no"


def test_bad_override_syntax_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="section.field=value"):
        apply_overrides(MINIMAL, ["train.max_steps"])
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_relative_dataset_paths_resolve_next_to_the_yaml(tmp_path, monkeypatch):
    (tmp_path / "d.json").write_text("[]")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(MINIMAL | {"data": {"datasets": [{"path": "d.json"}]}}))
    monkeypatch.chdir("/")
    assert load_config(tmp_path / "run.yaml").data.datasets[0].path == str(tmp_path / "d.json")


def test_defaults_are_a_complete_lora_sft_run():
    config = RunConfig.model_validate(MINIMAL)
    assert (config.method.name, config.stage.name, config.model.name_or_path) == (
        "lora",
        "sft",
        "smollm2-135m-instruct",
    )


@pytest.mark.parametrize(
    ("typed", "trackers"),
    [
        ("wandb", ["wandb"]),
        ("tensorboard,trackio", ["tensorboard", "trackio"]),
        ("[mlflow, mlflow]", ["mlflow"]),
        ("none", []),
        ("[]", []),
    ],
)
def test_report_to_takes_one_tracker_several_or_none_as_typed_on_a_command_line(typed, trackers):
    assert parse_config(apply_overrides(MINIMAL, [f"train.report_to={typed}"])).train.report_to == trackers
    assert RunConfig.model_validate(MINIMAL).train.report_to == ["tensorboard"]  # event files by default


def test_an_unknown_tracker_is_refused_naming_the_choices():
    with pytest.raises(ConfigError) as err:
        parse_config(apply_overrides(MINIMAL, ["train.report_to=comet_ml"]))
    (problem,) = err.value.problems
    assert problem.field == "train.report_to.0" and "'tensorboard', 'trackio', 'wandb' or 'mlflow'" in problem.message
