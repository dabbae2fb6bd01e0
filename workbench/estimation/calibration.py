"""How fast this machine trains, as an effective FLOP/s: from measured runs, else a benchmark, else a default.

Measured runs are the best evidence: they ran the real worker on this machine. Before there are any, a short fp32
matmul benchmark runs once in a subprocess (this module must not import torch: the UI process imports it) and
is cached in the data directory. If that fails too, a conservative built-in rate is used.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from workbench import home, methods, models
from workbench.estimation.architecture import read_architecture, trainable_parameters
from workbench.estimation.costs import step_flops
from workbench.runs.files import RunFiles

Device = Literal["cpu", "cuda"]

CACHE_FILE = "estimate-calibration.json"
# Fallback per CPU thread: about half of the 54 GFLOP/s measured training SmolLM2-135M with LoRA on one AMD EPYC
# thread (AVX2), so an uncalibrated machine is more likely over- than under-estimated.
DEFAULT_CPU_FLOPS_PER_THREAD = 25e9
# Fallback for a whole GPU (nothing measured here): ~13% of an A100's dense bf16 peak (312 TFLOP/s), a share
# typical of small-batch LoRA with per-example attention; faster cards are then estimated slow, not fast.
DEFAULT_GPU_FLOPS = 40e12
# Training reaches this share of the benchmark's bare fp32 matmul rate. Measured here, one thread: 92 GFLOP/s
# for the matmul, 54 GFLOP/s of model FLOPs (costs.flops_per_token) for the worker training SmolLM2-135M.
TRAINING_SHARE_OF_MATMUL = 0.58
# What each CPU thread beyond the first adds, as a share of one thread's rate. Here a 2-thread fp32 matmul ran
# 1.95x one thread, but a LoRA training step on SmolLM2 only 1.63x (84 -> 137 tokens/s, best of 4, machine
# shared); STACK-NOTES saw 145 tokens/s on 2 threads (1.73x). Many small ops per layer synchronize the threads.
EXTRA_THREAD_EFFICIENCY = 0.7
# Seconds per optimizer step that do not grow with tokens (optimizer update, Python dispatch of ~1,000 ops,
# logging): SmolLM2 steps on 57-token batches took ~0.1 s more than their FLOPs explain.
STEP_OVERHEAD_SECONDS = 0.1
# Median over this many of the newest measured runs: recent enough to follow the machine, several to damp noise.
RECENT_RUNS = 5
BENCHMARK_TIMEOUT_SECONDS = 60

# The training matmul shape of a small model (512 tokens x 576 -> 1536); the median of five 0.1 s windows.
_BENCHMARK = """
import json, time, torch
torch.set_num_threads(1)
a, b = torch.randn(512, 576), torch.randn(576, 1536)
for _ in range(5):
    a @ b
rates = []
for _ in range(5):
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.1:
        a @ b
        n += 1
    rates.append(2 * 512 * 576 * 1536 * n / (time.perf_counter() - start))
print(json.dumps({"flops_per_second": sorted(rates)[2], "torch": torch.__version__}))
"""


@dataclass(frozen=True)
class Calibration:
    """An effective training rate: model FLOPs per second of one CPU thread (device "cpu") or of one GPU."""

    flops_per_second: float
    source: Literal["runs", "benchmark", "default", "given"]
    detail: str = ""


def calibrate(
    device: Device = "cpu", *, runs_dir: Path | None = None, exclude: Collection[Path] = (), benchmark: bool = True
) -> Calibration:
    """The best calibration available: measured runs, else the cached or a fresh benchmark, else the default.

    `exclude` leaves out run folders (e.g. the run being estimated); `benchmark=False` never starts a subprocess.
    """
    measured = from_runs(device, runs_dir or home.runs_dir(), exclude)
    if measured is not None:
        return measured
    if device == "cuda":
        return Calibration(DEFAULT_GPU_FLOPS, "default", "built-in GPU rate; no measured GPU runs yet")
    rate = cached_benchmark() if benchmark else None
    if rate is not None:
        return Calibration(rate * TRAINING_SHARE_OF_MATMUL, "benchmark", f"fp32 matmul {rate / 1e9:.0f} GFLOP/s")
    return Calibration(DEFAULT_CPU_FLOPS_PER_THREAD, "default", "built-in CPU rate")


def cpu_threads(requested: int | None) -> int:
    """Threads the worker will use: `train.threads`, else every core it may run on."""
    return requested or len(os.sched_getaffinity(0))


def thread_speedup(threads: int) -> float:
    """How many single threads' worth of speed `threads` threads give (at most one per core)."""
    usable = min(threads, len(os.sched_getaffinity(0)))
    return 1 + (usable - 1) * EXTRA_THREAD_EFFICIENCY


def from_runs(device: Device, runs_dir: Path, exclude: Collection[Path] = ()) -> Calibration | None:
    """Median effective rate of the newest runs that logged at least two steps after the first, or None."""
    skip = {Path(p).resolve() for p in exclude}
    folders = [p for p in runs_dir.glob("*") if p.is_dir() and not p.name.startswith(".") and p.resolve() not in skip]
    folders.sort(key=lambda p: _mtime(p / "metrics.jsonl"), reverse=True)
    rates: list[float] = []
    for folder in folders:
        rate = _run_rate(str(folder), _mtime(folder / "metrics.jsonl"), _mtime(folder / "manifest.json"), device)
        if rate is not None:
            rates.append(rate)
        if len(rates) == RECENT_RUNS:
            break
    if not rates:
        return None
    return Calibration(statistics.median(rates), "runs", f"median of {len(rates)} measured run(s)")


@functools.lru_cache(maxsize=256)  # the form re-estimates on every change; a run's files change only while it runs
def _run_rate(folder: str, metrics_mtime: float, manifest_mtime: float, device: Device) -> float | None:
    # The modification times only key the cache: a run that logs another step is read again.
    files = RunFiles(Path(folder))
    try:
        config = files.read_config()
        hardware = _read_json(files.manifest).get("hardware", {})
        model_dir = models.local_folder(config.model.name_or_path)  # never converts or downloads
        if model_dir is None or config.data.val_size > 0:  # evaluation between logged steps would read as slowness
            return None
        arch = read_architecture(model_dir)
    except Exception:  # noqa: BLE001  a run we cannot read is no evidence, not an error
        return None
    # A run gets its manifest when it finishes; one still running (or stopped) is taken as a run on the CPU.
    requested = config.train.precision if config.train.precision != "auto" else _AUTO_PRECISION[device]
    if hardware.get("device", "cpu") != device or hardware.get("precision", requested) not in _FAST[device]:
        return None
    # The first logged step includes warm-up: measure from its end to the last record.
    records = [r for r in files.read_metrics() if {"step", "time", "num_tokens"} <= r.keys()]
    if len(records) < 2 or records[0]["step"] < 1:
        return None
    first, last = records[0], records[-1]
    steps, tokens = last["step"] - first["step"], last["num_tokens"] - first["num_tokens"]
    seconds = last["time"] - first["time"] - steps * STEP_OVERHEAD_SECONDS
    if steps < 1 or tokens <= 0 or seconds <= 0:
        return None
    t = config.train
    examples = steps * t.per_device_train_batch_size * t.gradient_accumulation_steps
    checkpointing = bool(hardware.get("gradient_checkpointing", False))
    spec = methods.get(config.method.name)
    if spec.quantization is not None or not spec.padding_free:
        return None  # dequantizing or padding costs time the FLOP count does not see
    trainable = files.read_status().get("trainable_params")
    if trainable is None:  # a run from before the worker recorded it
        try:
            trainable = trainable_parameters(config.method, arch)
        except ValueError:
            return None
    rate = step_flops(arch, config.method, tokens, examples, checkpointing, trainable) / seconds
    if device == "cpu":
        rate /= thread_speedup(int(hardware.get("threads") or cpu_threads(t.threads)))
    return rate


# Runs in a precision the device is slow at (bf16 on a CPU without native bf16) say nothing about its speed.
_FAST = {"cpu": ("fp32",), "cuda": ("bf16", "fp16")}
_AUTO_PRECISION = {"cpu": "fp32", "cuda": "bf16"}


def cached_benchmark() -> float | None:
    """Single-thread fp32 matmul FLOP/s: cached in the data directory, measured once per machine."""
    path = home.home() / CACHE_FILE
    machine = _machine()
    cached = _read_json(path)
    if cached.get("machine") == machine and isinstance(cached.get("matmul_flops_per_thread"), float):
        return cached["matmul_flops_per_thread"]
    rate = run_benchmark()
    if rate is not None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        record = {"machine": machine, "matmul_flops_per_thread": rate, "measured_at": time.time()}
        tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
        tmp.replace(path)
    return rate


def run_benchmark() -> float | None:
    """Run the matmul benchmark in a subprocess (~2 s, mostly importing torch); None if it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _BENCHMARK],
            capture_output=True,
            text=True,
            timeout=BENCHMARK_TIMEOUT_SECONDS,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        rate = float(json.loads(done.stdout.strip().splitlines()[-1])["flops_per_second"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, IndexError):
        return None
    return rate if rate > 0 else None


def _machine() -> str:
    return f"{platform.node()}|{platform.machine()}|{platform.processor()}|{os.cpu_count()}"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
