"""What stops a method on this machine is said before Start (form, CLI) and again by the worker."""

from __future__ import annotations

import pytest

from tests.conftest import PRESETS
from tests.test_training import cli
from workbench.config import load_config
from workbench.runs import preflight


def qlora(*overrides: str):
    return load_config(PRESETS / "sft-qlora-smollm2.yaml", list(overrides))


def test_qlora_runs_on_cpu_and_cuda_but_not_on_apple_gpus():
    assert preflight.problems(qlora(), "cpu") == []
    assert preflight.problems(qlora(), "cuda") == []
    (problem, optimizer) = preflight.problems(qlora(), "mps")
    assert "no Apple GPU (MPS) backend" in problem and "train.optim=paged_adamw_8bit" in optimizer


def test_half_precision_compute_on_a_cpu_is_refused_naming_the_field():
    (problem,) = preflight.problems(qlora("method.compute_dtype=bf16"), "cpu")
    assert "method.compute_dtype=bf16" in problem
    assert preflight.problems(qlora("method.compute_dtype=bf16"), "cuda") == []


def test_other_methods_have_nothing_to_refuse_on_any_device():
    lora = load_config(PRESETS / "sft-lora-identity.yaml")
    assert all(preflight.problems(lora, device) == [] for device in ("cpu", "cuda", "mps"))


@pytest.mark.slow
def test_cli_refuses_before_anything_is_written(home):
    result = cli(
        "train", str(PRESETS / "sft-qlora-smollm2.yaml"), "--set", "method.compute_dtype=fp16", "--detach", home=home
    )
    assert result.returncode == 2
    assert "method.compute_dtype=fp16" in result.stderr
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


# Stage × method pairs that cannot train together, and a word of the reason each gives.
REFUSED_PAIRS = {
    ("reward", "freeze"): "score head",
    ("reward", "bottleneck"): "score head",
    ("reward", "llama_adapter"): "score head",
    ("orpo", "prompt"): "virtual tokens",
    ("simpo", "ptuning"): "virtual tokens",
    ("online_dpo", "prompt"): "virtual tokens",
}


# The preset's replay learns the base model's distributions, which only supervised fine-tuning does.
OTHER_STAGE = ["data.datasets.1.answers=data"]


@pytest.mark.parametrize(("stage", "method"), REFUSED_PAIRS)
def test_a_stage_refuses_methods_it_cannot_train_naming_why(stage, method):
    config = load_config(
        PRESETS / "sft-lora-identity.yaml", [*OTHER_STAGE, f"stage.name={stage}", f"method.name={method}"]
    )
    (problem,) = preflight.problems(config, "cpu")
    assert problem.startswith("method.name: ") and REFUSED_PAIRS[stage, method] in problem


def test_the_same_stages_take_their_other_methods():
    for stage, method in [("reward", "lora"), ("reward", "full"), ("orpo", "prefix"), ("simpo", "lora")]:
        overrides = [*OTHER_STAGE, f"stage.name={stage}", f"method.name={method}"]
        config = load_config(PRESETS / "sft-lora-identity.yaml", overrides)
        assert preflight.problems(config, "cpu") == [], (stage, method)


@pytest.mark.slow
def test_cli_refuses_a_stage_method_mismatch_with_the_field(home):
    result = cli(
        "train", str(PRESETS / "orpo-lora-smollm2.yaml"), "--set", "method.name=prompt", "--detach", home=home
    )
    assert result.returncode == 2
    assert "method.name: this stage's TRL trainer lines logits up" in result.stderr
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


def with_trackers(*trackers: str):
    return load_config(PRESETS / "sft-lora-identity.yaml", [f"train.report_to=[{', '.join(trackers)}]"])


@pytest.fixture
def installed(monkeypatch):
    """Pretend these packages are installed (or, with False, that they are not)."""
    import importlib.util

    real = importlib.util.find_spec

    def pretend(**packages: bool) -> None:
        fake = {name: (object() if there else None) for name, there in packages.items()}
        monkeypatch.setattr(
            importlib.util, "find_spec", lambda name, *a: fake[name] if name in fake else real(name, *a)
        )

    return pretend


def test_tensorboard_and_trackio_need_only_their_packages(installed):
    assert preflight.problems(with_trackers("tensorboard"), "cpu", env={}) == []
    installed(trackio=True)
    assert preflight.problems(with_trackers("tensorboard", "trackio"), "cpu", env={}) == []
    installed(trackio=False)
    (problem,) = preflight.problems(with_trackers("trackio"), "cpu", env={})
    assert problem == "train.report_to: Trackio needs `trackio`, which is not installed: pip install trackio"


def test_wandb_needs_its_package_and_a_key_or_offline_mode(installed, tmp_path):
    installed(wandb=False)
    (problem,) = preflight.problems(with_trackers("wandb"), "cpu", env={})
    assert "pip install wandb, then set WANDB_API_KEY (or WANDB_MODE=offline)" in problem

    installed(wandb=True)
    no_login = {"HOME": str(tmp_path)}
    (problem,) = preflight.problems(with_trackers("wandb"), "cpu", env=no_login)
    assert problem.startswith("train.report_to: W&B needs an API key: set WANDB_API_KEY")
    for env in ({"WANDB_API_KEY": "k"}, {"WANDB_MODE": "offline"}):
        assert preflight.problems(with_trackers("wandb"), "cpu", env=no_login | env) == []
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password k\n")  # `wandb login`
    assert preflight.problems(with_trackers("wandb"), "cpu", env=no_login) == []


def test_mlflow_needs_its_package_and_logs_locally_unless_told_where(installed, home):
    from workbench.runs import tracking
    from workbench.runs.files import RunFiles

    installed(mlflow=False)
    (problem,) = preflight.problems(with_trackers("mlflow"), "cpu", env={})
    assert problem.endswith("MLflow needs `mlflow`, which is not installed: pip install mlflow")
    installed(mlflow=True)
    assert preflight.problems(with_trackers("mlflow"), "cpu", env={}) == []
    files = RunFiles(home / "runs" / "r1")
    local = tracking.environment(["mlflow"], files, {})
    assert local == {"MLFLOW_EXPERIMENT_NAME": "workbench", "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db"}
    server = tracking.environment(["mlflow"], files, {"MLFLOW_TRACKING_URI": "https://u:secret@mlflow.example"})
    (shown,) = tracking.destinations(["mlflow"], files, server, "r1")
    assert shown == {"tracker": "MLflow", "text": "https://mlflow.example, experiment workbench"}  # no password
