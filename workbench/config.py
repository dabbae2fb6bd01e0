"""The run config: the one typed description of a training run.

The UI form, the YAML presets, the CLI and the worker all read and write this object. Validation collects every
problem at once and names the field, the allowed values and the value it got.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workbench import methods, stages
from workbench.errors import ConfigError, FieldProblem

DataFormat = Literal["auto", "alpaca", "sharegpt", "openai"]
# How big a mix of datasets with shares is (workbench/data/mixing.py).
MixStrategy = Literal["no_repeats", "every_row"]
# Shares that add up to 1 within this are taken as adding up to 1 (0.33 + 0.33 + 0.34, or float rounding).
SHARE_TOLERANCE = 1e-3
# What a dataset is for: training, the eval loss during training, or the held-out test set that `eval` reads.
DatasetUse = Literal["train", "validation", "test"]
# What a dataset's replies teach: the data's own, the base model's replies to its prompts (workbench/data/rehearsal.py)
# or the base model's distributions along them (workbench/training/distill.py).
Answers = Literal["data", "base", "base_distribution"]
# Where a run's metrics go besides its own folder's metrics.jsonl (workbench/runs/tracking.py).
Tracker = Literal["tensorboard", "trackio", "wandb", "mlflow"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Section):
    name_or_path: str = Field(
        "smollm2-135m-instruct",
        min_length=1,
        description="A bundled model key, a local Hugging Face model folder, or a hub id such as org/name.",
    )
    chat_template: str | None = Field(None, description="A Jinja chat template that replaces the model's own.")
    parent_run: str | None = Field(
        None,
        description="Start from an earlier run of this model (SFT → DPO): its adapter trains on (with its method "
        "settings), or its whole model becomes the starting point.",
    )


class DatasetSpec(_Section):
    path: str = Field(
        min_length=1,
        description="A .json, .jsonl, .csv, .parquet or .txt file; a folder written by datasets' save_to_disk; a "
        "folder holding LLaMA-Factory's dataset_info.json; or a Hugging Face hub dataset, hf://org/name.",
    )
    name: str | None = Field(None, description="The entry to use from dataset_info.json, when path is such a folder.")
    subset: str | None = Field(None, description="The subset (configuration) of a hub dataset.")
    split: str | None = Field(
        None, description="The split of a hub dataset or a save_to_disk DatasetDict; default: train, or its only one."
    )
    format: DataFormat = Field("auto", description="Record layout: alpaca, sharegpt, openai messages, or detect it.")
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Which field plays which role, by LLaMA-Factory's keys: prompt (user turn), query (its second "
        "part), response (reply), system, history, messages (a conversation); chosen, rejected (pairs); kto_tag "
        "(a KTO label); answer (a reference answer), e.g. {prompt: Frage, response: Antwort}. An empty name: none.",
    )
    tags: dict[str, str] = Field(default_factory=dict, description="LLaMA-Factory sharegpt tags (role_tag, ...).")
    max_samples: int | None = Field(
        None, ge=1, description="Use at most this many rows of this dataset (its first ones), before any mixing."
    )
    share: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Its share of the training rows when datasets are mixed, e.g. 0.2; datasets without one "
        "divide what is left equally (see data.mix_strategy).",
    )
    use: DatasetUse = Field(
        "train",
        description="What this dataset is for: training, validation (the eval loss during training, in place of "
        "val_size) or test (held out for `eval` after training, in place of test_size).",
    )
    fill: dict[str, str] = Field(
        default_factory=dict,
        description="Values for placeholders in the data, e.g. {name: Ada, author: Lovelace Labs} fills {{name}} "
        "and {{author}}.",
    )
    answers: Answers = Field(
        "data",
        description="What the run learns from this dataset's replies: the data's own (data); the base model's greedy "
        "replies to the data's prompts, written before training (base); or, along the data's replies, the base "
        "model's whole next-token distribution (base_distribution, supervised fine-tuning). General prompts replayed "
        "with the model's own answers keep what it knew without pulling it towards another model's style.",
    )

    @field_validator("fill")
    @classmethod
    def _placeholder_names(cls, fill: dict[str, str]) -> dict[str, str]:
        bad = next((name for name in fill if not name.isidentifier()), None)
        if bad is not None:
            raise ValueError(f"{bad!r} is not a placeholder name (letters, digits and _, as in {{{{name}}}})")
        return fill


class DataConfig(_Section):
    datasets: list[DatasetSpec] = Field(
        min_length=1, description="One or more datasets: concatenated, or mixed by their shares."
    )
    mix_strategy: MixStrategy = Field(
        "no_repeats",
        description="How many rows a mix with shares has: no_repeats, as many as the datasets give without "
        "repeating a row (bigger ones are sampled down to their share); every_row, every row at least once "
        "(smaller ones repeat to keep their share). Rows are drawn with train.seed, once for all epochs.",
    )
    cutoff_len: int = Field(1024, ge=16, le=131072, description="Longest example in tokens; longer ones are cut.")
    train_on_prompt: bool = Field(False, description="Also train on prompt tokens, not only the responses.")
    packing: bool = Field(False, description="Pack several examples into each sequence of cutoff_len tokens.")
    val_size: float = Field(0.0, ge=0.0, lt=1.0, description="Share of rows held out to measure eval loss.")
    test_size: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Share of conversations held out of training and saved with the run as its test set, for "
        "`eval` to compare base and tuned replies on.",
    )
    system_prompt: str | None = Field(
        None,
        description="The system message of every conversation that has none, in training and in chat; empty: the "
        "chat template's own default.",
    )

    @field_validator("system_prompt")
    @classmethod
    def _blank_is_none(cls, text: str | None) -> str | None:
        return text if text and text.strip() else None

    @model_validator(mode="after")
    def _shares_add_up(self) -> DataConfig:
        given = [spec.share for spec in self.training_datasets() if spec.share is not None]
        if not given:
            return self
        total, unset = sum(given), len(self.training_datasets()) - len(given)
        if unset == 0 and abs(total - 1) > SHARE_TOLERANCE:
            raise ValueError(f"the datasets' shares add up to {total:g}; they must add up to 1")
        if unset and total >= 1 - SHARE_TOLERANCE:
            raise ValueError(
                f"the shares given add up to {total:g}, which leaves nothing for the {unset} dataset(s) without one"
            )
        return self

    @model_validator(mode="after")
    def _uses(self) -> DataConfig:
        if not self.training_datasets():
            raise ValueError("every dataset is a validation or test set: give at least one with use: train")
        if any(spec.share is not None for spec in self.datasets if spec.use != "train"):
            raise ValueError("a share is for a training dataset; a validation or test set is used whole")
        other = next((spec.answers for spec in self.datasets if spec.use != "train" and spec.answers != "data"), None)
        if other:
            raise ValueError(
                f"answers: {other} is for a training dataset; a validation or test set keeps its own replies"
            )
        for use, share in (("validation", "val_size"), ("test", "test_size")):
            if getattr(self, share) > 0 and any(spec.use == use for spec in self.datasets):
                raise ValueError(f"data.{share} is set and a dataset has use: {use}; use one or the other")
        return self

    def training_datasets(self) -> list[DatasetSpec]:
        """The datasets the run trains on (mixed by their shares), not those kept for validation or test."""
        return [spec for spec in self.datasets if spec.use == "train"]

    def shares(self) -> list[float] | None:
        """Each training dataset's share of a mix (adding up to 1), or None when none has one (concatenated)."""
        given = [spec.share for spec in self.training_datasets()]
        if all(share is None for share in given):
            return None
        known = [share for share in given if share is not None]
        rest = (1 - sum(known)) / (len(given) - len(known)) if len(known) < len(given) else 0.0
        shares = [rest if share is None else share for share in given]
        return [share / sum(shares) for share in shares]

    def has_validation(self) -> bool:
        """Whether the run measures an eval loss: a share held out, or a validation dataset."""
        return self.val_size > 0 or any(spec.use == "validation" for spec in self.datasets)

    def has_test(self) -> bool:
        """Whether the run keeps a test set for `eval`: a share held out, or a test dataset."""
        return self.test_size > 0 or any(spec.use == "test" for spec in self.datasets)


class TrainConfig(_Section):
    num_train_epochs: float = Field(3.0, gt=0, le=1000, description="Passes over the data (unless max_steps is set).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps; overrides epochs.")
    learning_rate: float = Field(2e-4, gt=0, le=1, description="Peak learning rate.")
    lr_scheduler_type: Literal[
        "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup"
    ] = Field("cosine", description="How the learning rate changes after warm-up.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Share of steps spent warming the learning rate up.")
    per_device_train_batch_size: int = Field(4, ge=1, le=4096, description="Examples per step on each device.")
    gradient_accumulation_steps: int = Field(1, ge=1, le=4096, description="Steps whose gradients add up per update.")
    weight_decay: float = Field(0.0, ge=0, le=1, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, ge=0, description="Gradient clipping norm; 0 turns clipping off.")
    optim: Literal[
        "adamw_torch",
        "adamw_torch_fused",
        "adafactor",
        "sgd",
        "adamw_bnb_8bit",
        "paged_adamw_8bit",
        "paged_adamw_32bit",
    ] = Field(
        "adamw_torch",
        description="Optimizer. The bnb/paged ones (bitsandbytes) keep AdamW's states in 8 bits, or page them out "
        "of GPU memory when it runs short; on a CPU, paged falls back to the plain version.",
    )
    seed: int = Field(42, ge=0, description="Random seed for initialisation, shuffling and dropout.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Compute precision; auto picks bf16 on GPUs that have it and fp32 on CPUs."
    )
    gradient_checkpointing: Literal["auto", "on", "off"] = Field(
        "auto", description="Recompute activations to save memory; auto turns it on only for large models on GPU."
    )
    threads: int | None = Field(None, ge=1, le=1024, description="CPU threads for training; default: all cores.")
    logging_steps: int = Field(1, ge=1, description="Log loss every this many steps.")
    eval_steps: int | None = Field(
        None, ge=1, description="Evaluate every this many steps (needs validation data); default: save_steps."
    )
    early_stopping_patience: int | None = Field(
        None,
        ge=1,
        description="Stop once best_metric has not improved for this many evaluations in a row (needs validation "
        "data); the best checkpoint becomes the result. Empty: train to the end.",
    )
    early_stopping_threshold: float = Field(
        0.0, ge=0.0, description="The least change of best_metric that counts as an improvement for early stopping."
    )
    keep_best: bool = Field(
        False,
        description="Make the checkpoint with the best best_metric the run's result rather than the last one "
        "(always on with early stopping). A checkpoint is then saved at every evaluation.",
    )
    best_metric: str = Field(
        "eval_loss",
        pattern=r"^[A-Za-z0-9_/.-]+$",
        description="The evaluation metric that picks the best checkpoint and drives early stopping: eval_loss, or "
        "another logged eval metric (e.g. eval_mean_token_accuracy); names ending in loss are better lower.",
    )
    save_steps: int = Field(50, ge=1, description="Save a resumable checkpoint every this many steps.")
    save_total_limit: int | None = Field(2, ge=1, description="Keep at most this many checkpoints.")
    report_to: list[Tracker] = Field(
        default_factory=lambda: ["tensorboard"],
        description="Experiment trackers that also get the metrics: TensorBoard (event files in the run folder), "
        "Trackio (local), W&B or MLflow (where installed and set up); none: leave it empty.",
    )

    def keeps_best(self) -> bool:
        """Whether the best checkpoint, not the last, becomes the run's result."""
        return self.keep_best or self.early_stopping_patience is not None

    @field_validator("report_to", mode="before")
    @classmethod
    def _one_or_several(cls, value: Any) -> Any:
        # As in Hugging Face's report_to: one name, several (a list, or "a,b" on a command line), or "none".
        if value is None:
            return []
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list) and all(isinstance(name, str) for name in value):
            return [] if value == ["none"] else list(dict.fromkeys(value))
        return value


MethodParams = Annotated[Union[methods.params_types()], Field(discriminator="name")]  # noqa: UP007
StageParams = Annotated[Union[stages.params_types()], Field(discriminator="name")]  # noqa: UP007
# Sections chosen by a `name` from a registry: (registry, default name).
_CHOSEN = {"method": (methods, "lora"), "stage": (stages, "sft")}


class RunConfig(_Section):
    """Everything a run needs; `name` is a label for people, not an identifier."""

    name: str | None = Field(None, max_length=200, description="A label for this run.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig
    stage: StageParams = Field(default_factory=lambda: stages.get("sft").params())
    method: MethodParams = Field(default_factory=lambda: methods.get("lora").params())
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="before")
    @classmethod
    def _stage_was_a_train_field(cls, raw: Any) -> Any:
        # Runs frozen before stages had a section of their own say `train.stage: sft`.
        train = raw.get("train") if isinstance(raw, dict) else None
        if isinstance(train, dict) and "stage" in train and "stage" not in raw:
            raw = {**raw, "train": {k: v for k, v in train.items() if k != "stage"}, "stage": {"name": train["stage"]}}
        return raw

    @field_validator("method", "stage", mode="before")
    @classmethod
    def _known_name(cls, value: Any, info: Any) -> Any:
        registry, default = _CHOSEN[info.field_name]
        name = value.get("name", default) if isinstance(value, dict) else getattr(value, "name", None)
        if name not in registry.names():
            raise ValueError(f"unknown {info.field_name} {name!r}; choose one of: {', '.join(registry.names())}")
        if isinstance(value, dict) and "name" not in value:
            value = {**value, "name": name}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if not self.data.has_validation():
            for name in ("eval_steps", "early_stopping_patience"):
                if getattr(self.train, name) is not None:
                    raise ValueError(
                        f"train.{name} is set but there is no validation data (data.val_size is 0 and no dataset "
                        "has use: validation): there is nothing to evaluate on"
                    )
            if self.train.keep_best:
                raise ValueError("train.keep_best needs validation data (data.val_size or a validation dataset)")
        if self.data.has_test() and stages.get(self.stage.name).data != "conversations":
            raise ValueError(
                f"a test set (data.test_size or use: test) holds conversations; stage {self.stage.name!r} trains on "
                "other data"
            )
        other = next((spec.answers for spec in self.data.datasets if spec.answers != "data"), None)
        if other and stages.get(self.stage.name).data != "conversations":
            raise ValueError(
                f"answers: {other} replaces the replies of conversations; stage {self.stage.name!r} trains on other "
                "data"
            )
        if self.data.packing and not methods.get(self.method.name).padding_free:
            raise ValueError(
                f"data.packing cannot be used with method {self.method.name!r}: its virtual tokens belong in front "
                "of each example, not of a packed row"
            )
        return self


def parse_config(raw: dict[str, Any]) -> RunConfig:
    """Validate a plain dict into a RunConfig, raising ConfigError listing every problem."""
    if not isinstance(raw, dict):
        raise ConfigError([FieldProblem("", f"a run config must be a mapping of sections, got {type(raw).__name__}")])
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError([_problem(e) for e in err.errors()]) from None


def _problem(error: dict[str, Any]) -> FieldProblem:
    # Discriminated unions add the tag to the location (method.lora.r); people know the field as method.r.
    section = str(error["loc"][0]) if error["loc"] else ""
    tags = _CHOSEN[section][0].names() if section in _CHOSEN else []
    loc = [str(p) for i, p in enumerate(error["loc"]) if not (i == 1 and p in tags)]
    field = ".".join(loc)
    kind, got = error["type"], error.get("input")
    if kind == "extra_forbidden":
        return FieldProblem(field, "unknown setting")
    if kind == "missing":
        return FieldProblem(field, "is required")
    message = error["msg"].removeprefix("Value error, ")
    if kind not in ("value_error", "model_type") and not isinstance(got, dict | list):
        message += f" (got {got!r})"
    return FieldProblem(field, message)


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML run config, apply `section.field=value` overrides, resolve dataset paths, validate."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError([FieldProblem("", f"{path}: no such config file")]) from None
    except yaml.YAMLError as err:
        raise ConfigError([FieldProblem("", f"{path}: not valid YAML: {err}")]) from None
    if not isinstance(raw, dict):
        raise ConfigError([FieldProblem("", f"{path}: expected a mapping of sections, got {type(raw).__name__}")])
    raw = apply_overrides(raw, overrides or [])
    _resolve_dataset_paths(raw, base=path.parent)
    return parse_config(raw)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted fields, e.g. `train.max_steps=4` or `data.datasets.0.path=x.json`; values are parsed as YAML.
    An index one past a list's end adds an item (`data.datasets.1.path=y.json` adds a second dataset).

    Choosing another method or stage (`method.name=prefix`) starts its section afresh: the old one's fields do not
    belong to the new one. It is switched first, whatever the order of the overrides.
    """
    raw = yaml.safe_load(yaml.safe_dump(raw))  # a deep copy
    problems = []
    for item in sorted(overrides, key=lambda item: not item.startswith(("method.name=", "stage.name="))):
        key, sep, text = item.partition("=")
        if not sep or not key:
            problems.append(FieldProblem(key, f"override {item!r} must look like section.field=value"))
            continue
        try:
            value = yaml.safe_load(text) if text else None
        except yaml.YAMLError as err:
            problems.append(FieldProblem(key, f"value {text!r} is not valid YAML: {err}"))
            continue
        section, _, field = key.partition(".")
        if field == "name" and section in _CHOSEN and isinstance(raw.get(section, {}), dict):
            if raw.get(section, {}).get("name", _CHOSEN[section][1]) != value:
                raw[section] = {}
        try:
            _set_dotted(raw, key.split("."), value)
        except (KeyError, IndexError, TypeError) as err:
            problems.append(FieldProblem(key, f"cannot set: {err}"))
    if problems:
        raise ConfigError(problems)
    return raw


def _set_dotted(node: Any, parts: list[str], value: Any) -> None:
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            index = int(part) if part.isdigit() else None
            if index is None or index > len(node):
                raise IndexError(f"{part!r} is not an index of a list of {len(node)}")
            if index == len(node):  # one past the end adds an item: data.datasets.1.path=... adds a dataset
                node.append({})
            if last:
                node[index] = value
            node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise TypeError(f"{'.'.join(parts[:i])} is not a section")


def _resolve_dataset_paths(raw: dict[str, Any], base: Path) -> None:
    # Relative dataset paths in a YAML file mean "next to this file", so presets work from any directory.
    for spec in (raw.get("data") or {}).get("datasets") or []:
        if isinstance(spec, dict) and isinstance(spec.get("path"), str):
            path = Path(spec["path"]).expanduser()
            if not path.is_absolute() and not path.exists() and (base / path).exists():
                spec["path"] = str((base / path).resolve())


def dump_config(config: RunConfig) -> str:
    """The YAML text of a config, with every field written out (the form of presets and frozen run configs), but
    for each dataset only what is set: its many defaults are the same for every dataset and would bury the rest."""
    dump = config.model_dump(mode="json")
    dump["data"]["datasets"] = [spec.model_dump(mode="json", exclude_defaults=True) for spec in config.data.datasets]
    return yaml.safe_dump(dump, sort_keys=False, allow_unicode=True)


def save_config(config: RunConfig, path: str | Path) -> None:
    """Write the config's YAML atomically: readers see the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(dump_config(config), encoding="utf-8")
    tmp.replace(path)
