"""GPU costs, measured through the worker and set beside the pre-flight estimate: 7B- and 1B-class Llamas.

    python bench/gpu.py [--quick] [--tiny] [--steps 8] [--budget 400] [--out DIR] [--work DIR]

Nothing in workbench/estimate.py's GPU constants was measured until this ran: the CUDA context
(GPU_RUNTIME_MB), the activation overhead of PyTorch's caching allocator (ACTIVATION_OVERHEAD["cuda"]) and
fp32's slowdown against bf16 (GPU_FP32_SLOWDOWN). This bench builds Llamas of a 7B and a 1B shape with random
weights on the GPU (the bundled SmolLM2 tokenizer, 49,152 entries), saves them, and trains each case below for a
few steps through the real worker (`python -m workbench.runs.worker`, queued as a run from
the UI or the CLI), on the first rows of LLaMA-Factory's alpaca demo. Each row holds what the worker reported
(peak allocated memory, seconds per step over steps 2..N, tokens/s, losses, the precision and checkpointing it
chose), the card's memory in use at the worker's peak (sampled), and what estimate() predicted before the run
for the same config on this device.

Results go to DIR/gpu.json after every case (DIR: --out, else $OUT, else bench/results), so a run cut short
still leaves the cases it finished, with each worker's last log lines in DIR/worker-logs.txt; the table is
printed as Markdown at the end and saved as DIR/gpu.md. `--tiny` takes the same path with tiny models (on a CPU
too, in bf16 and with checkpointing where the GPU would use them): a smoke test of the bench, not a measurement.
The tokenizer comes from .gpu/tokenizer (copied from the converted bundled model: the GPU machine has no gguf to
convert it) or, where that folder is missing, from the bundled model itself.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# Every model here is a local folder: no library may reach for the hub.
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[_name] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from bench.worker_run import STEADY_TRAIN, run_to_the_end  # noqa: E402
from workbench import estimate as estimate_module  # noqa: E402
from workbench.config import RunConfig, parse_config  # noqa: E402
from workbench.data.inspect import inspect_tokens  # noqa: E402
from workbench.estimation.architecture import read_architecture  # noqa: E402
from workbench.estimation.calibration import STEP_OVERHEAD_SECONDS, calibrate  # noqa: E402
from workbench.estimation.costs import activation_bytes_per_token_layer, lm_head_bytes, step_flops  # noqa: E402
from workbench.methods.counting import count_for_method  # noqa: E402
from workbench.runs.files import RunFiles  # noqa: E402
from workbench.runs.store import Job  # noqa: E402
from workbench.runs.summary import summarize  # noqa: E402

DATA = REPO / "presets" / "data" / "alpaca_en_demo.json"
TOKENIZER = REPO / ".gpu" / "tokenizer"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
MIB = 2**20
CUTOFF = 512
# SmolLM2's tokenizer; ids as in its config.json (<|endoftext|> 0, <|im_start|> 1, <|im_end|> 2).
VOCAB, BOS, EOS = 49152, 1, 2
# Llama-2-7B's shape (multi-head attention, untied output layer): 6.88B parameters with this vocabulary.
# A 1B-class shape like Llama 3.2 1B / TinyLlama (grouped-query attention, tied embeddings): 0.86B, below the
# 1B parameters above which the worker checkpoints by itself, so its cases show activations in full.
SHAPES: dict[str, dict[str, Any]] = {
    "7b": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
               intermediate_size=11008, tie_word_embeddings=False),
    "1b": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=16, num_key_value_heads=8,
               intermediate_size=5632, tie_word_embeddings=True),
}  # fmt: skip
# --tiny: the same two kinds of shape (untied MHA, tied GQA), small enough for a CPU.
TINY_SHAPES: dict[str, dict[str, Any]] = {
    "7b": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
               intermediate_size=128, tie_word_embeddings=False),
    "1b": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
               intermediate_size=128, tie_word_embeddings=True),
}  # fmt: skip
LORA = {"name": "lora", "r": 16, "alpha": 32, "target_modules": "all-linear"}
QLORA = {**LORA, "name": "qlora", "bits": 4, "quant_type": "nf4", "double_quant": True}


@dataclass(frozen=True)
class Case:
    name: str
    model: str  # a key of SHAPES
    method: dict[str, Any]
    precision: str = "auto"
    checkpointing: str = "auto"
    batch: int = 4
    learning_rate: float = 2e-4
    quick: bool = True  # part of --quick
    timeout: float = 150.0  # seconds for the worker on the GPU: start-up, loading and the steps


# The 7B pair first: they are the point. Then bf16 against fp32 on the same 1B (GPU_FP32_SLOWDOWN), full
# fine-tuning, a batch four times larger (activations against weights: ACTIVATION_OVERHEAD), and the 7B with
# checkpointing off (what checkpointing saves and costs).
CASES = [
    Case("7b-lora-bf16", "7b", LORA, timeout=240),
    Case("7b-qlora-nf4", "7b", QLORA, timeout=240),
    Case("1b-lora-bf16", "1b", LORA),
    Case("1b-lora-fp32", "1b", LORA, precision="fp32"),
    Case("1b-full-bf16", "1b", {"name": "full"}, learning_rate=2e-5, quick=False),
    Case("1b-lora-bf16-batch16", "1b", LORA, batch=16, quick=False),
    Case("7b-lora-bf16-no-checkpointing", "7b", LORA, checkpointing="off", quick=False, timeout=240),
]
# A case starts only with this many seconds of the budget left (the 7B loads 13 GB before its first step).
MIN_SECONDS = {"7b": 90.0, "1b": 40.0}


@dataclass
class Bench:
    """What the cases share: settings, where things live, what was found so far; written out after each case."""

    args: argparse.Namespace
    work: Path
    out: Path
    device: str
    started: float = field(default_factory=time.time)
    machine: dict[str, Any] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    derived: dict[str, Any] = field(default_factory=dict)

    def left(self) -> float:
        return self.args.budget - (time.time() - self.started)

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        record = {
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.args).items()},
            "device": self.device,
            "machine": self.machine,
            "estimate_constants": {
                "GPU_RUNTIME_MB": estimate_module.GPU_RUNTIME_MB,
                "ACTIVATION_OVERHEAD": estimate_module.ACTIVATION_OVERHEAD,
                "GPU_FP32_SLOWDOWN": estimate_module.GPU_FP32_SLOWDOWN,
            },
            "models": self.models,
            "rows": self.rows,
            "derived": self.derived,
            "seconds": round(time.time() - self.started, 1),
        }
        tmp = self.out / ".gpu.json.tmp"
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        tmp.replace(self.out / "gpu.json")


# ---------------------------------------------------------------- the machine and the models


def describe_machine(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count()}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info |= {"gpu": props.name, "gpu_memory_mb": round(props.total_memory / MIB), "cuda": torch.version.cuda}
    return info


# Run in a fresh process before this one touches CUDA: what a process holds on the card that PyTorch's allocator
# does not count (context, kernels, library handles), after one bf16 matmul and one SDPA call as training does.
_RUNTIME_PROBE = """
import json, torch
import torch.nn.functional as F
def used():
    free, total = torch.cuda.mem_get_info()
    return (total - free) / 2**20
torch.zeros(1, device="cuda")
after_init = used()
a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16, requires_grad=True)
(a @ a).sum().backward()
q = torch.randn(1, 32, 512, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
F.scaled_dot_product_attention(q, q, q, is_causal=True).sum().backward()
torch.cuda.synchronize()
print(json.dumps({
    "device_used_after_init_mb": round(after_init, 1),
    "device_used_after_work_mb": round(used(), 1),
    "reserved_mb": round(torch.cuda.memory_reserved() / 2**20, 1),
    "allocated_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
    "not_in_allocator_mb": round(used() - torch.cuda.memory_reserved() / 2**20, 1),
}))
"""


def probe_cuda_runtime() -> dict[str, Any]:
    """Device memory a CUDA process takes beyond its tensors; the card's use by others is read first (NVML)."""
    result: dict[str, Any] = {}
    try:
        import pynvml  # nvidia-ml-py: reads the card without a CUDA context of our own

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        result["device_used_before_mb"] = round(pynvml.nvmlDeviceGetMemoryInfo(handle).used / MIB, 1)
        result["driver"] = pynvml.nvmlSystemGetDriverVersion()
        pynvml.nvmlShutdown()
    except Exception as err:  # noqa: BLE001  NVML is a nicety: the probe below stands without it
        result["nvml"] = repr(err)
    try:
        done = subprocess.run([sys.executable, "-c", _RUNTIME_PROBE], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return result | {"error": "the probe ran past 120 s"}
    try:
        return result | json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return result | {"error": done.stderr[-2000:]}


def tokenizer_folder() -> Path:
    if all((TOKENIZER / name).is_file() for name in TOKENIZER_FILES):
        return TOKENIZER
    from workbench import models  # converts the bundled GGUF once (needs the gguf package)

    return Path(models.resolve("smollm2-135m-instruct").path)


def build_model(key: str, shape: dict[str, Any], folder: Path, device: str) -> dict[str, Any]:
    """A Llama of `shape` with random weights, built on `device` in bf16 and saved with SmolLM2's tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    began = time.time()
    config = LlamaConfig(
        vocab_size=VOCAB,
        max_position_embeddings=4096,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=EOS,
        **shape,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    params = model.num_parameters()
    if device == "cuda":
        torch.cuda.synchronize()
    built = time.time()
    model.save_pretrained(folder)
    saved = time.time()
    del model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    source = tokenizer_folder()
    for name in TOKENIZER_FILES:
        shutil.copy(source / name, folder / name)
    size = sum(p.stat().st_size for p in folder.iterdir())
    return {
        "key": key,
        "params": params,
        "shape": shape,
        "build_seconds": round(built - began, 1),
        "save_seconds": round(saved - built, 1),
        "folder_mb": round(size / MIB, 1),
    }


# ---------------------------------------------------------------- one case


class DeviceMemory:
    """The card's memory in use, sampled every 50 ms while a worker runs; peak() is its rise above the start."""

    def __init__(self, device: str) -> None:
        self.enabled = device == "cuda"
        self.baseline = self.highest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _used(self) -> float:
        import torch

        free, total = torch.cuda.mem_get_info()
        return (total - free) / MIB

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.highest = max(self.highest, self._used())

    def __enter__(self) -> DeviceMemory:
        if self.enabled:
            self.baseline = self.highest = self._used()
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._stop.set()
            self._thread.join()

    def peak(self) -> float | None:
        return round(self.highest - self.baseline, 1) if self.enabled else None


def train(config: RunConfig, timeout: float) -> tuple[Job, str | None]:
    """Train through the queue, as a run from the UI or the CLI (bench/worker_run.py), with a time limit: a hung
    or slow worker must not spend the whole GPU budget. The worker's output stays in the run's log.txt."""
    job = run_to_the_end(config, timeout=timeout)
    if job.state == "finished":
        return job, None
    return job, job.error or f"{job.state} after {timeout:.0f} s (step {job.files.read_status().get('step', 0)})"


def make_config(case: Case, model_dir: Path, args: argparse.Namespace) -> RunConfig:
    precision, checkpointing = case.precision, case.checkpointing
    if args.tiny:  # what the worker will choose on the GPU, so the smoke test takes the same code paths
        precision = "bf16" if precision == "auto" else precision
        checkpointing = ("on" if case.model == "7b" else "off") if checkpointing == "auto" else checkpointing
    return parse_config(
        {
            "name": f"bench gpu {case.name}",
            "model": {"name_or_path": str(model_dir)},
            "data": {"datasets": [{"path": str(DATA), "max_samples": args.steps * case.batch}], "cutoff_len": CUTOFF},
            "method": case.method,
            "train": {
                "max_steps": args.steps,
                "learning_rate": case.learning_rate,
                "per_device_train_batch_size": case.batch,
                "precision": precision,
                "gradient_checkpointing": checkpointing,
                "logging_steps": 1,
                **({"threads": 2} if args.tiny else {}),
                **STEADY_TRAIN,
            },
        }
    )


def mean_tokens(config: RunConfig, model_dir: Path) -> float:
    """The dataset's mean encoded length after the cut, as the Data tab feeds the estimate."""
    stats = inspect_tokens(config.data.datasets[0], str(model_dir), config.data.cutoff_len, False)["stats"]
    return stats["total_tokens"] / stats["rows"]


def predict(bench: Bench, config: RunConfig, model_dir: Path, mean: float, calibration) -> dict[str, Any]:
    """estimate() for this config on this device, as the Train tab would give it before Start."""
    trainable, _ = count_for_method(config.method, model_dir)
    available = bench.machine.get("gpu_memory_mb") if bench.device == "cuda" else None
    e = estimate_module.estimate(
        config,
        model_dir,
        mean,
        device=bench.device,
        available_memory_mb=available,
        calibration=calibration,
        trainable_params=trainable,
    )
    return {
        "peak_memory_mb": e.peak_memory_mb,
        "seconds_per_step": e.seconds_per_step,
        "trainable_params": e.trainable_params,
        "verdict": e.verdict,
        "calibration": f"{calibration.source}: {calibration.flops_per_second / 1e12:.1f} TFLOP/s",
    }


def steady(files: RunFiles) -> dict[str, Any]:
    """Tokens and time over steps 2..N from metrics.jsonl (step 1 includes warm-up), and per-step tokens."""
    records = [r for r in files.read_metrics() if {"step", "time", "num_tokens"} <= r.keys() and "loss" in r]
    if len(records) < 2:
        return {}
    first, last = records[0], records[-1]
    per_step = [first["num_tokens"]] + [b["num_tokens"] - a["num_tokens"] for a, b in pairwise(records)]
    seconds = last["time"] - first["time"]
    tokens = last["num_tokens"] - first["num_tokens"]
    return {
        "steps_timed": last["step"] - first["step"],
        "tokens_timed": tokens,
        "seconds_timed": seconds,
        "tokens_per_second": round(tokens / seconds, 1) if seconds > 0 else None,
        "max_step_tokens": max(per_step),
        "mean_step_tokens": round(sum(per_step) / len(per_step), 1),
    }


def analyse(config: RunConfig, model_dir: Path, row: dict[str, Any], mean: float) -> dict[str, Any]:
    """What the measurement says about each estimate constant, for this case.

    effective_tflops: model FLOPs (workbench.estimation.costs) per second over steps 2..N, as calibration reads
    a run. implied_activation_overhead: the peak allocated memory less the estimate's weights, adapter state and
    LM-head buffers, over the raw saved activations of the step with the most tokens (the peak's step).
    runtime_mb: the card's memory in use at the worker's peak beyond its allocated peak (context and the
    allocator's cached blocks), the room GPU_RUNTIME_MB stands for.
    """
    arch = read_architecture(model_dir)
    hw = row.get("hardware") or {}
    ckpt = bool(hw.get("gradient_checkpointing"))
    dtype_bytes = 4 if hw.get("precision") == "fp32" else 2
    trainable = row.get("trainable_params") or row["estimate"]["trainable_params"]
    found: dict[str, Any] = {}
    if row.get("steps_timed") and row.get("seconds_timed"):
        examples = row["steps_timed"] * config.train.per_device_train_batch_size
        flops = step_flops(arch, config.method, row["tokens_timed"], examples, ckpt, trainable)
        seconds = row["seconds_timed"] - row["steps_timed"] * STEP_OVERHEAD_SECONDS
        if seconds > 0:
            found["effective_tflops"] = round(flops / seconds / 1e12, 2)
    per_token = arch.num_layers * activation_bytes_per_token_layer(arch, config.method, dtype_bytes, ckpt) / MIB
    tokens = config.train.per_device_train_batch_size * min(mean, config.data.cutoff_len)
    runtime = estimate_module.GPU_RUNTIME_MB if row["device"] == "cuda" else estimate_module.CPU_RUNTIME_MB
    overhead = estimate_module.ACTIVATION_OVERHEAD[row["device"]]
    # The estimate's weights + adapter state: its peak less what it adds for the runtime and the activations.
    fixed = row["estimate"]["peak_memory_mb"] - runtime - tokens * per_token * overhead
    fixed -= lm_head_bytes(arch, tokens, dtype_bytes) / MIB
    found["estimated_weights_and_state_mb"] = round(fixed, 1)
    peak_tokens = row.get("max_step_tokens")
    if row.get("peak_memory_mb") and peak_tokens:
        # On a CPU the worker's figure is resident memory: the runtime is in it.
        measured = row["peak_memory_mb"] - (runtime if row["device"] == "cpu" else 0)
        found["lm_head_mb"] = round(lm_head_bytes(arch, peak_tokens, dtype_bytes) / MIB, 1)
        found["raw_activations_mb_per_token"] = round(per_token, 4)
        activations = measured - fixed - found["lm_head_mb"]
        found["measured_activations_mb"] = round(activations, 1)
        found["raw_activations_mb"] = round(peak_tokens * per_token, 1)
        found["implied_activation_overhead"] = round(activations / (peak_tokens * per_token), 3)
    if row.get("device_peak_mb") and row.get("peak_memory_mb"):
        found["runtime_mb"] = round(row["device_peak_mb"] - row["peak_memory_mb"], 1)
    return found


def run_case(bench: Bench, case: Case, model_dir: Path, empty_runs: Path) -> dict[str, Any]:
    config = make_config(case, model_dir, bench.args)
    row: dict[str, Any] = {"case": case.name, "model": case.model, "method": case.method["name"]}
    row |= {"device": bench.device, "batch": case.batch}
    row |= {"requested_precision": case.precision, "requested_checkpointing": case.checkpointing}
    mean = mean_tokens(config, model_dir)
    row["mean_tokens_per_example"] = round(mean, 1)
    try:  # what the Train tab shows before any GPU run: the built-in GPU rate (runs_dir holds no run)
        row["estimate"] = predict(bench, config, model_dir, mean, calibrate(bench.device, runs_dir=empty_runs))
    except Exception:  # noqa: BLE001  a broken estimate is a finding; the run is still measured
        row["estimate"] = {"error": traceback.format_exc()[-2000:]}
    timeout = bench.args.tiny_timeout if bench.args.tiny else case.timeout
    began = time.time()
    with DeviceMemory(bench.device) as device_memory:
        job, error = train(config, min(timeout, max(bench.left(), 30.0)))
    files = job.files
    row["wall_seconds"] = round(time.time() - began, 1)
    row["device_peak_mb"] = device_memory.peak()
    status = files.read_status()
    with (bench.out / "worker-logs.txt").open("a") as logs:  # every worker's last lines, for what the rows omit
        logs.write(f"===== {case.name} ({error or 'finished'})\n{files.log_tail(80)}\n")
    if error:
        row["error"] = error
        row["log_tail"] = files.log_tail(60)
        print(f"--- {case.name} failed: {error}\n{row['log_tail']}\n---", flush=True)
    summary = summarize(files, job.state)
    row |= {k: v for k, v in asdict(summary).items() if k not in ("method", "eval_loss", "weights_bytes")}
    row["steps"] = status.get("step")
    row["base_weights"] = status.get("base_weights")
    row["startup_seconds"] = _elapsed(status, "started_at", "train_began_at")
    row["first_step_seconds"] = _elapsed(status, "train_began_at", "first_step_at")
    try:
        manifest = json.loads(files.manifest.read_text())
        row["hardware"] = manifest["hardware"]
        row["packages"] = manifest["packages"]
    except (OSError, ValueError, KeyError):
        row["hardware"] = None
    from workbench import methods, stages

    # The worker's rule (workbench/runs/worker.py): padding-free batches take the per-example attention.
    padding_free = methods.get(config.method.name).padding_free and stages.get(config.stage.name).padding_free
    row["attention"] = "workbench_varlen_sdpa" if padding_free else "sdpa"
    row |= steady(files)
    try:
        row["analysis"] = analyse(config, model_dir, row, mean)
    except Exception:  # noqa: BLE001  the measurement stands without its analysis
        row["analysis"] = {"error": traceback.format_exc()[-2000:]}
    return row


def _elapsed(status: dict[str, Any], start: str, end: str) -> float | None:
    if status.get(start) is None or status.get(end) is None:
        return None
    return round(status[end] - status[start], 1)


# ---------------------------------------------------------------- after the cases


def derive(bench: Bench) -> None:
    """The figures the estimate's constants should take, from all rows; and the estimate re-run on a GPU rate
    calibrated from these runs, as the Train tab would once they exist (in-sample: the same runs)."""
    rows = {r["case"]: r for r in bench.rows if not r.get("error")}
    bf16, fp32 = rows.get("1b-lora-bf16"), rows.get("1b-lora-fp32")
    if bf16 and fp32 and bf16.get("seconds_per_step") and fp32.get("seconds_per_step"):
        bench.derived["fp32_slowdown"] = round(fp32["seconds_per_step"] / bf16["seconds_per_step"], 2)
    small, large = rows.get("1b-lora-bf16"), rows.get("1b-lora-bf16-batch16")
    if small and large and "lm_head_mb" in small.get("analysis", {}) and "lm_head_mb" in large.get("analysis", {}):
        # The same model at two batch sizes: the rise of the peak per token is the activations' alone, whatever
        # the estimate gets wrong about the weights and optimizer state.
        rise = (large["peak_memory_mb"] - large["analysis"]["lm_head_mb"]) - (
            small["peak_memory_mb"] - small["analysis"]["lm_head_mb"]
        )
        tokens = large["max_step_tokens"] - small["max_step_tokens"]
        raw = small["analysis"]["raw_activations_mb_per_token"]
        if tokens > 0:
            bench.derived["activation_overhead_from_batch_4_to_16"] = round(rise / (tokens * raw), 3)
    for key in ("implied_activation_overhead", "runtime_mb", "effective_tflops"):
        values = {name: r["analysis"][key] for name, r in rows.items() if key in r.get("analysis", {})}
        if values:
            bench.derived[key] = values
    calibration = calibrate(bench.device, runs_dir=bench.work / "runs", benchmark=False)
    bench.derived["calibration_from_these_runs"] = asdict(calibration)
    for name, row in rows.items():
        model_dir = bench.work / "models" / row["model"]
        case = next(c for c in CASES if c.name == name)
        config = make_config(case, model_dir, bench.args)
        again = predict(bench, config, model_dir, row["mean_tokens_per_example"], calibration)
        row["estimate_calibrated_seconds_per_step"] = again["seconds_per_step"]


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| case | precision, checkpointing | peak allocated (estimate) | card in use | s/step (estimate) | "
        "tokens/s | loss: step 1 → last | TFLOP/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        hw = r.get("hardware") or {}
        est = r.get("estimate") or {}
        if r.get("error"):
            lines.append(f"| {r['case']} | failed: {r['error'].splitlines()[-1][:100]} |||||||")
            continue
        chose = f"{hw.get('precision', '?')}, {'on' if hw.get('gradient_checkpointing') else 'off'}"
        lines.append(
            f"| {r['case']} | {chose} | {_num(r.get('peak_memory_mb'))} MiB ({_num(est.get('peak_memory_mb'))}) "
            f"| {_num(r.get('device_peak_mb'))} MiB | {_num(r.get('seconds_per_step'), 3)} "
            f"({_num(est.get('seconds_per_step'), 3)}) | {_num(r.get('tokens_per_second'))} "
            f"| {_num(r.get('first_loss'), 3)} → {_num(r.get('final_loss'), 3)} "
            f"| {_num(r.get('analysis', {}).get('effective_tflops'), 1)} |"
        )
    return "\n".join(lines)


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def work_folder() -> Path:
    """A new folder where the models fit: the 7B's 13 GB, the 1B's 2 GB, and a full fine-tuning's saved model."""
    for root in ("/tmp", "/dev/shm"):
        if Path(root).is_dir() and shutil.disk_usage(root).free > 24 * 2**30:
            return Path(tempfile.mkdtemp(prefix="bench-gpu-", dir=root))
    return Path(tempfile.mkdtemp(prefix="bench-gpu-"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="the four main cases only (7B LoRA/QLoRA, 1B bf16/fp32)")
    parser.add_argument("--tiny", action="store_true", help="tiny models: a smoke test of this bench, also on a CPU")
    parser.add_argument("--cases", help="comma-separated case names (default: all, or the --quick ones)")
    parser.add_argument("--budget", type=float, default=400.0, help="seconds; later cases are skipped past it")
    parser.add_argument("--tiny-timeout", type=float, default=300.0, help="seconds per worker with --tiny")
    parser.add_argument("--out", type=Path, help="where gpu.json goes (default: $OUT, else bench/results)")
    parser.add_argument("--work", type=Path, help="models and run folders (default: a new folder under /tmp)")
    args = parser.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    work = args.work or work_folder()
    work.mkdir(parents=True, exist_ok=True)
    default_out = work if args.tiny else REPO / "bench" / "results"
    out = args.out or (Path(os.environ["OUT"]) if os.environ.get("OUT") else default_out)
    # The workers' data home (calibration cache, job store) inside the work folder, not the machine's own.
    os.environ["WORKBENCH_HOME"] = str(work / "home")
    os.environ["WORKBENCH_MODELS"] = str(work / "home" / "models")
    os.environ.setdefault("HF_HOME", str(work / "hf"))
    bench = Bench(args, work, out, device)
    names = args.cases.split(",") if args.cases else [c.name for c in CASES if c.quick or not args.quick]
    cases = [c for c in CASES if c.name in names]
    print(f"device {device}, work {work}, out {out}, cases {', '.join(c.name for c in cases)}", flush=True)

    if device == "cuda":
        bench.machine["runtime_probe"] = probe_cuda_runtime()  # before this process holds a context of its own
    bench.machine |= describe_machine(device)
    bench.machine["work_free_gb"] = round(shutil.disk_usage(work).free / 2**30, 1)
    print(json.dumps(bench.machine), flush=True)
    bench.save()
    (out / "worker-logs.txt").unlink(missing_ok=True)
    shapes = TINY_SHAPES if args.tiny else SHAPES
    empty_runs = work / "no-runs"
    empty_runs.mkdir(parents=True, exist_ok=True)
    for case in cases:
        if bench.left() < (5.0 if args.tiny else MIN_SECONDS[case.model]):
            bench.rows.append({"case": case.name, "error": f"skipped: {bench.left():.0f} s of the budget left"})
            print(f"{case.name}: skipped, {bench.left():.0f} s left", flush=True)
            bench.save()
            continue
        model_dir = work / "models" / case.model
        try:
            if case.model not in bench.models:
                bench.models[case.model] = {"error": "the build did not finish"}  # its other cases are skipped
                bench.models[case.model] = build_model(case.model, shapes[case.model], model_dir, device)
                print(f"model {case.model}: {json.dumps(bench.models[case.model])}", flush=True)
            if "error" in bench.models[case.model]:
                raise RuntimeError(f"model {case.model} could not be built")
            started = time.time()
            bench.rows.append(run_case(bench, case, model_dir, empty_runs))
            print(f"{case.name}: {time.time() - started:.0f} s, {bench.left():.0f} s left", flush=True)
        except Exception:  # noqa: BLE001  one case's failure must not lose the others
            text = traceback.format_exc()
            print(f"--- {case.name} failed in the bench:\n{text}---", flush=True)
            bench.rows.append({"case": case.name, "error": text.strip().splitlines()[-1], "traceback": text[-4000:]})
        bench.save()
    try:
        derive(bench)
    except Exception:  # noqa: BLE001  the rows are saved already; the summary is a convenience
        bench.derived["error"] = traceback.format_exc()[-2000:]
    bench.save()
    print(table(bench.rows))
    print(json.dumps(bench.derived, indent=1))
    (out / "gpu.md").write_text(table(bench.rows) + "\n")


if __name__ == "__main__":
    main()
