"""What stops a method on this machine is said before Start (form, CLI) and again by the worker."""

from __future__ import annotations

import pytest

from tests.conftest import PRESETS
from tests.test_training import cli
from workbench import preflight
from workbench.config import load_config


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
