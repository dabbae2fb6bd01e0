"""The pre-flight estimate: parameter counts against PEFT, memory and time against real runs of the worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PRESETS, REPO, only_dataset
from workbench import home as workbench_home
from workbench import methods, stages
from workbench.config import RunConfig, dump_config, load_config
from workbench.estimate import estimate, verdict_for
from workbench.estimation import Calibration, calibrate, read_architecture, trainable_parameters
from workbench.estimation import calibration as calibration_module
from workbench.estimation.calibration import STEP_OVERHEAD_SECONDS, thread_speedup
from workbench.estimation.costs import step_flops
from workbench.methods.counting import count_for_method
from workbench.methods.lora import LoraParams
from workbench.runs.queue import RunQueue
from workbench.runs.submission import freeze

# The bundled SmolLM2-135M-Instruct's shapes, so fast tests need no converted model.
SMOLLM2 = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 576,
    "num_hidden_layers": 30,
    "intermediate_size": 1536,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "vocab_size": 49152,
    "tie_word_embeddings": True,
}
# Two tiny Llamas: untied without biases, and tied with biases and a head_dim that is not hidden / heads.
TINY_LLAMAS = [
    {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 176, "num_attention_heads": 4,
     "num_key_value_heads": 2, "vocab_size": 1000, "tie_word_embeddings": False},
    {"hidden_size": 48, "num_hidden_layers": 3, "intermediate_size": 80, "num_attention_heads": 6,
     "num_key_value_heads": 3, "head_dim": 16, "vocab_size": 500, "tie_word_embeddings": True,
     "attention_bias": True, "mlp_bias": True},
]  # fmt: skip
LORA_CASES = [("all-linear", 8), ("attention", 4), (["q_proj", "down_proj"], 16), (["v_proj", "gate_proj"], 2)]
FIXED = Calibration(50e9, "given")  # an effective FLOP/s per thread, for tests that do not check time


def config_dir(tmp_path: Path, config: dict) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", **config}), encoding="utf-8")
    return folder


def identity(*overrides: str) -> RunConfig:
    return load_config(PRESETS / "sft-lora-identity.yaml", list(overrides))


def plain(*overrides: str) -> RunConfig:
    """The identity preset with its replay as the data's replies (learning the base's distributions is for
    supervised fine-tuning only) and, unless a stage is named, no KL term to the base."""
    stage = [] if any(o.startswith("stage.name=") for o in overrides) else ["stage.kl_to_base=0"]
    return identity("data.datasets.1.answers=data", *stage, *overrides)


# -- parameter counts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", TINY_LLAMAS, ids=["untied", "tied-biases"])
@pytest.mark.parametrize(("targets", "r"), LORA_CASES, ids=lambda v: str(v))
def test_lora_count_matches_peft_on_a_tiny_llama(tmp_path, shape, targets, r):
    from peft import get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = config_dir(tmp_path, shape)
    model = LlamaForCausalLM(LlamaConfig(**shape))
    assert read_architecture(folder).total_params == model.num_parameters()
    params = LoraParams(r=r, target_modules=targets)
    context = methods.Context(model_path=folder, run_dir=tmp_path)
    peft_model = get_peft_model(model, methods.get("lora").build_peft_config(params, model, context))
    assert trainable_parameters(params, folder) == peft_model.get_nb_trainable_parameters()[0]
    # The count the form shows for any method (meta device) agrees with the formula and with PEFT.
    assert count_for_method(params, folder) == peft_model.get_nb_trainable_parameters()


@pytest.mark.parametrize(("targets", "r"), [("all-linear", 16), ("attention", 8)])
def test_lora_count_matches_peft_on_the_bundled_model(model_ref, targets, r, tmp_path):
    from peft import get_peft_model

    from workbench import models

    model = models.load_model(model_ref)
    assert read_architecture(model_ref.path).total_params == model.num_parameters()
    params = LoraParams(r=r, target_modules=targets)
    trainable, everything = get_peft_model(
        model, methods.get("lora").build_peft_config(params, model, methods.Context(model_ref.path, tmp_path))
    ).get_nb_trainable_parameters()
    result = estimate(identity(f"method.r={r}", f"method.target_modules={targets}"), model_ref.path, 60,
                      calibration=FIXED)  # fmt: skip
    assert result.trainable_params == trainable
    assert result.trainable_share == pytest.approx(trainable / everything)


def test_unknown_target_module_names_the_field(tmp_path):
    folder = config_dir(tmp_path, SMOLLM2)
    with pytest.raises(ValueError, match="method.target_modules.*'qkv_proj'"):
        trainable_parameters(LoraParams(target_modules=["qkv_proj"]), folder)


def test_missing_shape_in_config_json_names_the_key(tmp_path):
    folder = config_dir(tmp_path, {k: v for k, v in SMOLLM2.items() if k != "intermediate_size"})
    with pytest.raises(ValueError, match="intermediate_size"):
        read_architecture(folder)


# -- the UI process stays light ---------------------------------------------------------------------------


def test_estimating_imports_no_heavy_library_and_caches_the_benchmark(tmp_path, home):
    folder = config_dir(tmp_path, SMOLLM2)
    code = (
        "import json, sys\n"
        "from workbench.config import load_config\n"
        "from workbench.estimate import estimate\n"
        "result = estimate(load_config(sys.argv[1], []), sys.argv[2], 80.0, dataset_rows=91)\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'verdict': result.verdict, 'seconds': result.seconds_per_step}))\n"
    )
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(PRESETS / "sft-lora-identity.yaml"), str(folder)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["heavy"] == []
    assert answer["verdict"] == "fits" and answer["seconds"] > 0
    # The benchmark ran once, in a subprocess, and is cached for the next estimate.
    cached = json.loads((home / calibration_module.CACHE_FILE).read_text())
    assert cached["matmul_flops_per_thread"] > 1e9
    assert calibrate().source == "benchmark"


# -- verdict and advice -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("share", "verdict"),
    [(0.1, "fits"), (0.69, "fits"), (0.71, "tight"), (0.94, "tight"), (0.96, "will-not-fit"), (3.0, "will-not-fit")],
)
def test_verdict_thresholds(share, verdict):
    assert verdict_for(share * 10_000, 10_000) == verdict


def test_too_little_memory_says_which_fields_to_change(tmp_path):
    folder = config_dir(tmp_path, SMOLLM2)
    config = identity("data.cutoff_len=512")
    small = estimate(config, folder, 300, available_memory_mb=1024, calibration=FIXED)
    assert small.verdict == "will-not-fit"
    text = small.advice
    for words in ("train.per_device_train_batch_size (now 8)", "data.cutoff_len (now 512)", "QLoRA"):
        assert words in text
    tight = estimate(config, folder, 300, available_memory_mb=small.peak_memory_mb / 0.8, calibration=FIXED)
    assert tight.verdict == "tight" and "data.cutoff_len" in tight.advice
    roomy = estimate(config, folder, 300, available_memory_mb=small.peak_memory_mb * 2, calibration=FIXED)
    assert roomy.verdict == "fits" and roomy.advice == ""
    assert roomy.available_memory_mb == pytest.approx(small.peak_memory_mb * 2, abs=0.1)


def test_defaults_to_the_ram_available_now(tmp_path):
    import psutil

    result = estimate(identity(), config_dir(tmp_path, SMOLLM2), 80, calibration=FIXED)
    assert result.available_memory_mb == pytest.approx(psutil.virtual_memory().available / 2**20, rel=0.2)


def test_bf16_on_cpu_is_flagged_and_estimated_slow(tmp_path):
    folder = config_dir(tmp_path, SMOLLM2)
    fp32 = estimate(identity(), folder, 80, calibration=FIXED)
    bf16 = estimate(identity("train.precision=bf16"), folder, 80, calibration=FIXED)
    assert bf16.seconds_per_step > 20 * fp32.seconds_per_step
    assert "train.precision" in bf16.advice


def test_a_gpu_needs_its_free_memory_and_checkpoints_large_models(tmp_path):
    big = {**SMOLLM2, "hidden_size": 2048, "intermediate_size": 8192, "num_attention_heads": 32,
           "num_key_value_heads": 8, "head_dim": 64, "num_hidden_layers": 16, "vocab_size": 128256}  # fmt: skip
    folder = config_dir(tmp_path, big)
    with pytest.raises(ValueError, match="available_memory_mb"):
        estimate(identity(), folder, 500, device="cuda", calibration=FIXED)
    auto = estimate(identity("data.cutoff_len=2048"), folder, 1500, device="cuda", available_memory_mb=24_000)
    off = estimate(identity("data.cutoff_len=2048", "train.gradient_checkpointing='off'"), folder, 1500,
                   device="cuda", available_memory_mb=24_000)  # fmt: skip
    assert auto.total_params > 1e9
    assert auto.peak_memory_mb < off.peak_memory_mb and auto.seconds_per_step > off.seconds_per_step
    assert auto.verdict == "fits" and off.verdict == "will-not-fit"
    assert "set train.gradient_checkpointing to on" in off.advice


# -- scaling and steps ------------------------------------------------------------------------------------


def test_memory_and_time_grow_with_the_batch_and_accumulation_costs_time_only(tmp_path):
    folder = config_dir(tmp_path, SMOLLM2)
    one = estimate(identity("train.per_device_train_batch_size=1"), folder, 200, calibration=FIXED)
    four = estimate(identity("train.per_device_train_batch_size=4"), folder, 200, calibration=FIXED)
    accumulated = estimate(
        identity("train.per_device_train_batch_size=1", "train.gradient_accumulation_steps=4"),
        folder,
        200,
        calibration=FIXED,
    )
    assert one.peak_memory_mb < four.peak_memory_mb
    assert accumulated.peak_memory_mb == one.peak_memory_mb
    assert 3 < four.seconds_per_step / one.seconds_per_step < 4.5
    assert accumulated.seconds_per_step == pytest.approx(four.seconds_per_step, rel=0.1)
    # Longer examples cost more than linearly in time (attention is per example: sum of squared lengths).
    long = estimate(identity("data.cutoff_len=4096"), folder, 4000, calibration=FIXED)
    short = estimate(identity("data.cutoff_len=4096"), folder, 100, calibration=FIXED)
    assert long.seconds_per_step / short.seconds_per_step > 45


@pytest.mark.parametrize(
    ("overrides", "rows", "steps"),
    [
        (["train.max_steps=7"], None, 7),
        ([], None, None),
        ([], 91, 36),  # 3 epochs x ceil(91 / 8) batches
        (["train.gradient_accumulation_steps=4"], 91, 9),  # 3 x ceil(12 / 4)
        (["data.val_size=0.1"], 91, 33),  # 9 rows held out: 3 x ceil(82 / 8)
        (["train.num_train_epochs=0.5"], 91, 6),
    ],
)
def test_total_steps(tmp_path, overrides, rows, steps):
    result = estimate(identity(*overrides), config_dir(tmp_path, SMOLLM2), 80, dataset_rows=rows, calibration=FIXED)
    assert result.total_steps == steps
    if steps is None:
        assert result.total_seconds is None
    else:
        assert result.total_seconds > steps * result.seconds_per_step  # plus start-up


# -- calibration ------------------------------------------------------------------------------------------


def test_calibration_prefers_measured_runs_and_can_leave_one_out(tmp_path, home):
    folder = config_dir(tmp_path, SMOLLM2)
    config = identity(f"model.name_or_path={folder}", "train.threads=1")
    run = workbench_home.runs_dir() / "20260101-000000-abcdef"
    run.mkdir()
    (run / "config.yaml").write_text(dump_config(config))
    (run / "manifest.json").write_text(json.dumps({"hardware": {"device": "cpu", "precision": "fp32", "threads": 1}}))
    records = [{"step": s, "time": 100.0 + 8 * s, "num_tokens": 640 * s, "loss": 1.0} for s in range(1, 5)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    measured = calibrate(benchmark=False)
    assert measured.source == "runs"
    arch = read_architecture(folder)
    flops = step_flops(arch, config.method, tokens=3 * 640, examples=3 * 8)
    assert measured.flops_per_second == pytest.approx(flops / (3 * 8 - 3 * STEP_OVERHEAD_SECONDS) / thread_speedup(1))
    assert calibrate(exclude=[run], benchmark=False).source == "default"
    assert calibrate(device="cuda", benchmark=False).source == "default"  # a CPU run says nothing about a GPU


def test_cached_benchmark_is_reused(home, monkeypatch):
    monkeypatch.setattr(calibration_module, "run_benchmark", lambda: 80e9)
    first = calibrate()
    monkeypatch.setattr(calibration_module, "run_benchmark", lambda: pytest.fail("benchmark ran twice"))
    assert calibrate() == first
    assert first.source == "benchmark"
    assert first.flops_per_second == pytest.approx(80e9 * calibration_module.TRAINING_SHARE_OF_MATMUL)


# -- against real runs of the worker ----------------------------------------------------------------------

# Two settings on one thread: short identity chats in batches of 4, and alpaca answers up to 256 tokens. Each run
# takes every row once, so the dataset's mean length is that of the examples trained on.
SETTINGS = {
    "identity, batch 4, cutoff 128": [
        "train.per_device_train_batch_size=4",
        "data.cutoff_len=128",
        "train.max_steps=3",
        "data.datasets.0.max_samples=12",
    ],
    "alpaca, batch 4, cutoff 256": [
        only_dataset(PRESETS / "data" / "alpaca_en_demo.json"),
        "train.per_device_train_batch_size=4",
        "data.cutoff_len=256",
        "train.max_steps=2",
        "data.datasets.0.max_samples=8",
    ],
}
COMMON = ["train.threads=1", "train.save_steps=1000"]


def wait_finished(store: RunQueue, job_id: str, timeout: float = 600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        store.reconcile()
        job = store.get(job_id)
        if job.state in ("finished", "failed", "stopped"):
            assert job.state == "finished", job.error
            return job
        time.sleep(0.5)
    raise AssertionError(f"run {job_id} did not finish in {timeout} s")


@pytest.mark.slow
def test_estimate_is_within_a_factor_of_two_of_real_runs(model_ref, home):
    # Calibrated before any run exists, so no run's own measurements feed its estimate.
    calibration = calibrate()
    assert calibration.source == "benchmark"
    store = RunQueue()
    configs = {name: freeze(identity(*COMMON, *overrides)) for name, overrides in SETTINGS.items()}
    jobs = {name: store.submit(config) for name, config in configs.items()}  # the queue runs them one by one

    compared, statuses = {}, {}
    for name, job in jobs.items():
        status = statuses[name] = wait_finished(store, job.id).files.read_status()
        stats = status["data_stats"]
        predicted = estimate(
            configs[name], model_ref.path, stats["length_mean"], dataset_rows=stats["rows"], calibration=calibration
        )
        compared[name] = {
            "peak_memory_mb": (status["peak_memory_mb"], predicted.peak_memory_mb),
            "seconds_per_step": (status["seconds_per_step"], predicted.seconds_per_step),
        }
    # Once runs are on record they calibrate later estimates; leaving them out falls back to the benchmark.
    measured = calibrate()
    assert measured.source == "runs"
    assert calibrate(exclude=[Path(j.run_dir) for j in jobs.values()]).source == "benchmark"
    recalibrated = {
        name: estimate(configs[name], model_ref.path, status["data_stats"]["length_mean"], calibration=measured)
        for name, status in statuses.items()
    }
    print(
        json.dumps(
            {
                "calibration": [calibration.flops_per_second, calibration.detail],
                "from runs": [measured.flops_per_second, measured.detail],
                "measured, estimated": compared,
                "seconds_per_step estimated from the runs": {k: e.seconds_per_step for k, e in recalibrated.items()},
            },
            indent=1,
        )
    )
    for name, figures in compared.items():
        for key, (measured_value, estimated) in figures.items():
            assert 0.5 <= estimated / measured_value <= 2, (
                f"{name}: {key} measured {measured_value}, estimated {estimated}"
            )
    # The estimate scales: the longer setting's step costs several times the shorter one's, in both.
    (mem_a, est_mem_a), (sec_a, est_sec_a) = compared["identity, batch 4, cutoff 128"].values()
    (mem_b, est_mem_b), (sec_b, est_sec_b) = compared["alpaca, batch 4, cutoff 256"].values()
    assert 0.67 <= (est_sec_b / est_sec_a) / (sec_b / sec_a) <= 1.5
    assert 0.67 <= (est_mem_b / est_mem_a) / (mem_b / mem_a) <= 1.5


@pytest.mark.parametrize("stage", stages.names())
def test_every_stage_is_estimated_with_its_own_costs(tmp_path, stage):
    folder = config_dir(tmp_path, SMOLLM2)
    sft = estimate(plain(), folder, 200, available_memory_mb=50_000, calibration=FIXED)
    spec = stages.get(stage)
    result = estimate(plain(f"stage.name={stage}"), folder, 200, available_memory_mb=50_000, calibration=FIXED)
    assert result.peak_memory_mb > 0 and result.seconds_per_step > 0
    # Pairs train on two sequences and a reference model reads them again: each costs time over SFT.
    if spec.sequences > 1 or spec.reference_forwards:
        assert result.seconds_per_step > sft.seconds_per_step
    if spec.samples:
        assert "leaves out sampling" in result.advice


def test_holding_near_the_base_costs_a_forward_pass_of_the_base(tmp_path):
    folder = config_dir(tmp_path, SMOLLM2)
    free = estimate(plain(), folder, 200, available_memory_mb=50_000, calibration=FIXED)
    for held in (identity(), plain("stage.kl_to_base=1")):
        result = estimate(held, folder, 200, available_memory_mb=50_000, calibration=FIXED)
        assert result.seconds_per_step > free.seconds_per_step
