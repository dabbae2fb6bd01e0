"""The pre-flight estimate shown before Start: peak memory, time per step and for the run, and whether it fits.

Runs in the UI process, so it never imports torch, transformers, peft or trl: everything comes from the model's
config.json, the run config, the dataset's mean example length and a calibrated effective FLOP/s
(workbench.estimation.calibration). Checked against real runs of the worker in tests/test_estimate.py.

The figure estimated is the one the worker reports as `peak_memory_mb`: peak resident memory (ru_maxrss) on a
CPU; on a GPU, device memory, with the CUDA context added because it takes room on the card too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from workbench import methods, stages
from workbench.config import RunConfig
from workbench.estimation.architecture import Architecture, read_architecture, trainable_parameters
from workbench.estimation.calibration import (
    STEP_OVERHEAD_SECONDS,
    Calibration,
    Device,
    calibrate,
    cpu_threads,
    thread_speedup,
)
from workbench.estimation.costs import (
    activation_bytes_per_token_layer,
    forward_flops,
    lm_head_bytes,
    step_flops,
    trains_base_weights,
)

Verdict = Literal["fits", "tight", "will-not-fit"]

MIB = 2**20
# Verdict thresholds, as shares of the available memory: the estimate is for a typical batch, and batches of
# longer examples, the OS and other programs need room too.
FITS_BELOW = 0.70
TIGHT_BELOW = 0.95
# Resident memory of the worker before the model: Python with torch, transformers, peft, trl and datasets
# imported measured 488 MiB here; fitting peak RSS against batch tokens over 5 runs gave an intercept of
# 485 MiB beyond weights and adapter state.
CPU_RUNTIME_MB = 500
# On a GPU the CUDA context and library workspaces (~0.5 GB on current cards; not measured here).
GPU_RUNTIME_MB = 600
# Peak memory per saved activation byte. CPU: glibc keeps freed activation blocks (fragmentation) and the
# forward's temporaries come on top; fitted here as 1.85 from peak RSS of SmolLM2 with 30 and with 4 layers
# (57 to 1370 tokens per batch). GPU: PyTorch's caching allocator reuses blocks; assumed 1.25 (not measured).
ACTIVATION_OVERHEAD = {"cpu": 1.85, "cuda": 1.25}
# A bf16 matmul on a CPU without native bf16 ran ~55x slower than fp32 on this machine
# (STACK-NOTES.md); fp16 is no better.
CPU_HALF_PRECISION_SLOWDOWN = 55.0
# fp32 on a GPU runs on CUDA cores, not tensor cores: 15x below bf16 at peak, assumed 8x in practice.
GPU_FP32_SLOWDOWN = 8.0
# The worker's gradient checkpointing rule (workbench/training/hardware.py, which imports torch; keep in sync).
CHECKPOINTING_MIN_PARAMS = 1_000_000_000
# Start-up before step 1: imports, data encoding and loading the 0.5 GB bundled model took 8-10 s here;
# reading larger weights adds roughly 4 s per further GB from a local disk (assumed).
STARTUP_SECONDS = 8.0
STARTUP_SECONDS_PER_GB = 4.0
# Optimizer state per trainable weight, in fp32 values (adapters stay fp32 even on a bf16 base: PEFT upcasts
# them): AdamW keeps two moments; Adafactor only a row and a column per matrix; SGD without momentum nothing.
# 8-bit AdamW keeps both moments in one byte each: half an fp32 value per weight.
_OPTIMIZER_STATES = {
    "adamw_torch": 2,
    "adamw_torch_fused": 2,
    "adafactor": 0,
    "sgd": 0,
    "adamw_bnb_8bit": 0.5,
    "paged_adamw_8bit": 0.5,
    "paged_adamw_32bit": 2,
}


@dataclass(frozen=True)
class _Plan:
    """How the worker will run the config on this device, as far as the estimate needs it."""

    device: Device
    precision: str
    checkpointing: bool
    length: float  # tokens per example after the cut
    tokens: float  # tokens per micro-batch


@dataclass(frozen=True)
class Estimate:
    """What a run is expected to need.

    `total_steps` and `total_seconds` (start-up included) are None when a run set by epochs has no row count.
    `trainable_share` is trainable / (base + trainable), as PEFT reports it. `advice` is empty when the run fits
    and nothing else needs saying; otherwise one sentence per line, each naming the config fields to change.
    """

    peak_memory_mb: float
    seconds_per_step: float
    total_steps: int | None
    total_seconds: float | None
    trainable_params: int
    total_params: int
    trainable_share: float
    available_memory_mb: float
    verdict: Verdict
    advice: str


def estimate(
    config: RunConfig,
    model_dir: Path | str,
    mean_tokens_per_example: float,
    *,
    device: Device = "cpu",
    available_memory_mb: float | None = None,
    dataset_rows: int | None = None,
    calibration: Calibration | None = None,
    trainable_params: int | None = None,
) -> Estimate:
    """Estimate a run of `config` on the model in `model_dir` (a folder with config.json).

    `mean_tokens_per_example` is the dataset's mean encoded length before truncation (data_stats.length_mean);
    `dataset_rows` the rows that will be trained on (after max_samples), needed for a run set by epochs.
    `available_memory_mb` defaults to the RAM available now (psutil); a GPU's free memory must be given.
    `calibration` defaults to `calibrate(device)`, which may run a ~2 s benchmark once per machine.
    `trainable_params` (workbench.methods.counting.count_for_method) defaults to the low-rank formula, which
    covers LoRA-like methods only.
    """
    if mean_tokens_per_example <= 0:
        raise ValueError(f"mean_tokens_per_example must be positive, got {mean_tokens_per_example}")
    arch = read_architecture(model_dir)
    t, d = config.train, config.data
    trainable = trainable_parameters(config.method, arch) if trainable_params is None else trainable_params
    total = arch.total_params
    precision = t.precision if t.precision != "auto" else ("fp32" if device == "cpu" else "bf16")
    checkpointing = t.gradient_checkpointing == "on" or (
        t.gradient_checkpointing == "auto" and device == "cuda" and total >= CHECKPOINTING_MIN_PARAMS
    )

    length = min(mean_tokens_per_example, d.cutoff_len)
    # Packed rows are cutoff_len tokens of several examples; attention still stays within each example. A
    # preference pair trains on two sequences (prompt + chosen, prompt + rejected).
    stage = stages.get(config.stage.name)
    tokens = t.per_device_train_batch_size * (d.cutoff_len if d.packing else length) * stage.sequences
    plan = _Plan(device, precision, checkpointing, length, tokens)
    memory = _memory_mb(config, arch, trainable, plan)
    reference_forwards = _reference_forwards(config)
    if reference_forwards and methods.get(config.method.name).build_peft_config is None:
        memory["reference"] = memory["weights"]  # no adapter to switch off: a frozen copy of the model
    peak = sum(memory.values())

    rate = _flops_per_second(calibration or calibrate(device), plan, t.threads)
    flops = step_flops(arch, config.method, tokens, tokens / length, checkpointing, trainable)
    flops += reference_forwards * forward_flops(arch, tokens, tokens / length)
    if stage.head == "reward":  # one score per sequence instead of the vocabulary: no LM head to run
        flops -= 6.0 * arch.lm_head_params * tokens
    seconds_per_step = t.gradient_accumulation_steps * flops / rate + STEP_OVERHEAD_SECONDS

    steps = _total_steps(config, dataset_rows, length)
    startup = STARTUP_SECONDS + STARTUP_SECONDS_PER_GB * max(memory["weights"] / 1024 - 0.5, 0)
    total_seconds = None if steps is None else startup + steps * seconds_per_step

    if available_memory_mb is None:
        if device != "cpu":
            raise ValueError("available_memory_mb is required for a GPU: pass the card's free memory in MiB")
        import psutil

        available_memory_mb = psutil.virtual_memory().available / MIB
    verdict = verdict_for(peak, available_memory_mb)
    return Estimate(
        peak_memory_mb=round(peak, 1),
        seconds_per_step=round(seconds_per_step, 3),
        total_steps=steps,
        total_seconds=None if total_seconds is None else round(total_seconds, 1),
        trainable_params=trainable,
        total_params=total,
        trainable_share=trainable / (total if trains_base_weights(config.method) else total + trainable),
        available_memory_mb=round(available_memory_mb, 1),
        verdict=verdict,
        advice=_advice(config, verdict, memory, available_memory_mb, plan, mean_tokens_per_example),
    )


def _reference_forwards(config: RunConfig) -> int:
    """Gradient-free forward passes per trained sequence; online RL needs its reference only for a KL term, and
    supervised fine-tuning one only to keep near the base (workbench/training/distill.py)."""
    stage = stages.get(config.stage.name)
    if stage.samples and getattr(config.stage, "beta", 0) == 0:
        return 0
    if getattr(config.stage, "kl_to_base", 0) > 0 or any(
        spec.answers == "base_distribution" for spec in config.data.datasets
    ):
        return 1
    return stage.reference_forwards


def verdict_for(peak_memory_mb: float, available_memory_mb: float) -> Verdict:
    """fits below 70% of the available memory, tight below 95%, else will-not-fit."""
    if available_memory_mb <= 0:
        return "will-not-fit"
    share = peak_memory_mb / available_memory_mb
    return "fits" if share < FITS_BELOW else "tight" if share < TIGHT_BELOW else "will-not-fit"


def _memory_mb(config: RunConfig, arch: Architecture, trainable: int, plan: _Plan) -> dict[str, float]:
    """Peak memory by part, MiB: runtime, base weights, adapter state, activations (layers + LM head)."""
    dtype_bytes = 4 if plan.precision == "fp32" else 2
    states = _OPTIMIZER_STATES.get(config.train.optim, 2)
    per_token_layer = activation_bytes_per_token_layer(arch, config.method, dtype_bytes, plan.checkpointing)
    reward_head = stages.get(config.stage.name).head == "reward"
    layers = plan.tokens * arch.num_layers * per_token_layer * ACTIVATION_OVERHEAD[plan.device]
    return {
        "runtime": CPU_RUNTIME_MB if plan.device == "cpu" else GPU_RUNTIME_MB,
        "weights": _weight_bytes(config, arch, dtype_bytes) / MIB,
        # fp32 gradients and optimizer state, and the weights too where they are new (not the model's own)
        "adapter": trainable * 4 * (states + (1 if trains_base_weights(config.method) else 2)) / MIB,
        "activations": (layers + (0 if reward_head else lm_head_bytes(arch, plan.tokens, dtype_bytes))) / MIB,
    }


def _weight_bytes(config: RunConfig, arch: Architecture, dtype_bytes: int) -> float:
    """The base weights in memory; a quantized base (QLoRA) keeps its decoder layers' linear weights in `bits`
    bits (plus ~0.5 bit of quantization constants for 4-bit), embeddings and norms at full size."""
    bits = getattr(config.method, "bits", None)
    if bits is None:
        return arch.total_params * dtype_bytes
    linear = arch.num_layers * arch.layer_linear_params
    per_weight = 4.5 / 8 if bits == 4 else 1.0
    return linear * per_weight + (arch.total_params - linear) * dtype_bytes


def _flops_per_second(calibration: Calibration, plan: _Plan, threads: int | None) -> float:
    rate = calibration.flops_per_second
    if plan.device == "cpu":
        rate *= thread_speedup(cpu_threads(threads))
        return rate / CPU_HALF_PRECISION_SLOWDOWN if plan.precision != "fp32" else rate
    return rate / GPU_FP32_SLOWDOWN if plan.precision == "fp32" else rate


def _total_steps(config: RunConfig, rows: int | None, length: float) -> int | None:
    """Optimizer steps as the HF Trainer counts them: max_steps, else epochs x ceil(batches / accumulation)."""
    t, d = config.train, config.data
    if t.max_steps:
        return t.max_steps
    if rows is None:
        return None
    if d.test_size > 0:  # held out first, as the worker does
        rows -= max(1, round(rows * d.test_size))
    if d.val_size > 0:
        rows -= max(1, round(rows * d.val_size))
    if d.packing:
        rows = math.ceil(rows * length / d.cutoff_len)
    batches = math.ceil(max(rows, 1) / t.per_device_train_batch_size)
    return math.ceil(t.num_train_epochs * math.ceil(batches / t.gradient_accumulation_steps))


def _advice(
    config: RunConfig, verdict: Verdict, memory: dict[str, float], available: float, plan: _Plan, mean_length: float
) -> str:
    t, d = config.train, config.data
    advice = []
    if verdict != "fits":
        shrink = (
            f"lower train.per_device_train_batch_size (now {t.per_device_train_batch_size}) or data.cutoff_len "
            f"(now {d.cutoff_len}), raising train.gradient_accumulation_steps to keep the effective batch"
        )
        if plan.device == "cuda" and not plan.checkpointing:
            shrink += ", or set train.gradient_checkpointing to on"
        smaller = "use QLoRA (4-bit base weights) or a smaller model (model.name_or_path)"
        fixes = [shrink, smaller] if memory["activations"] >= memory["weights"] else [smaller, shrink]
        peak = sum(memory.values())
        advice.append(
            f"Needs about {peak:,.0f} MiB at its peak, {peak / max(available, 1):.0%} of the {available:,.0f} MiB "
            f"available: activations for ~{plan.tokens:,.0f} tokens per step take {memory['activations']:,.0f} MiB "
            f"and the base weights {memory['weights']:,.0f} MiB. To fit, {fixes[0]}; or {fixes[1]}."
        )
    if plan.device == "cpu" and plan.precision != "fp32":
        advice.append(
            f"train.precision is {plan.precision}: a CPU without native {plan.precision} computes it ~50x slower than "
            "fp32; set train.precision to auto."
        )
    if plan.device == "cpu" and plan.checkpointing:
        advice.append(
            "train.gradient_checkpointing is on: on a CPU it repeats the forward pass (about a third more time per "
            "step) for little memory; set it to auto unless memory is short."
        )
    if not d.packing and mean_length > d.cutoff_len:
        advice.append(
            f"The mean example ({mean_length:,.0f} tokens) is longer than data.cutoff_len ({d.cutoff_len}): most "
            "examples will be cut; raise data.cutoff_len if their endings matter."
        )
    if stages.get(config.stage.name).samples:
        advice.append(
            f"Time per step leaves out sampling: {getattr(config.stage, 'num_generations', 2)} replies of up to "
            f"{config.stage.max_completion_length} tokens per prompt are generated token by token first."
        )
    return "\n".join(advice)
