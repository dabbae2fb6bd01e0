"""Training throughput, launch time and peak memory: the workbench worker against a plain TRL script.

    python bench/throughput.py [--rounds 2] [--steps 8] [--rows 64] [--cutoff 512] [--batch 4] [--threads 2]

Both train LoRA (r=8, all linear layers, no dropout so the runs are comparable step by step) on the same rows of
LLaMA-Factory's alpaca demo with the same seed, batch and learning rate; the runs are interleaved
(workbench, warm workbench, plain, ...) so drifts in machine load hit all. "Workbench" starts a fresh worker
process; "warm" has the launcher the UI keeps running fork it, with the training stack already imported.
Throughput counts real (non-padding) tokens per second over steps 2..N (step 1 includes warm-up). "Launch to
training" is the time from starting the process to the trainer's first batch (imports, data, model); "launch to
step 1" adds the first optimizer step itself. The model is converted before anything is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workbench import models  # noqa: E402
from workbench.config import parse_config  # noqa: E402
from workbench.runs import spawn  # noqa: E402
from workbench.runs.queue import RunQueue  # noqa: E402
from workbench.runs.submission import freeze  # noqa: E402

DATA = REPO / "presets" / "data" / "alpaca_en_demo.json"


def run_workbench(settings: dict, work: Path, warm: bool = False) -> dict:
    """One run through the queue: a fresh `python -m workbench.runs.worker` process, or (warm) one forked by the
    launcher."""
    subset = work / "subset.json"
    subset.write_text(json.dumps(json.loads(DATA.read_text())[: settings["rows"]]))
    config = parse_config(
        {
            "model": {"name_or_path": "smollm2-135m-instruct"},
            "data": {"datasets": [{"path": str(subset)}], "cutoff_len": settings["cutoff_len"]},
            "method": {"name": "lora", "r": settings["lora_r"], "alpha": settings["lora_alpha"], "dropout": 0.0},
            "train": {
                "max_steps": settings["max_steps"],
                "learning_rate": settings["learning_rate"],
                "lr_scheduler_type": settings["lr_scheduler_type"],
                "per_device_train_batch_size": settings["batch_size"],
                "seed": settings["seed"],
                "threads": settings["threads"],
                "save_steps": 10_000,
            },
        }
    )
    frozen = freeze(config)  # outside the timing, as a submission is before its worker starts
    queue = RunQueue(spawner=spawn.start_worker if warm else spawn.start_fresh)
    launched = time.time()
    job = queue.submit(frozen)
    while job.state not in ("finished", "failed", "stopped"):
        time.sleep(0.1)
        queue.reconcile()
        job = queue.get(job.id)
    assert job.state == "finished", job.error
    status = job.files.read_status()
    steps = [r for r in job.files.read_metrics() if "loss" in r]
    result = summarize(launched, status["first_step_at"], steps, status["peak_memory_mb"])
    return {**result, "launch_to_training_s": status["train_began_at"] - launched}


def run_plain(settings: dict, work: Path, model_dir: str) -> dict:
    out = work / f"plain-{time.time_ns()}.json"
    settings_file = work / "settings.json"
    settings_file.write_text(json.dumps({**settings, "output_dir": str(work / "plain-out")}))
    launched = time.time()
    subprocess.run(
        [sys.executable, str(REPO / "bench" / "plain_trl_sft.py"), model_dir, str(DATA), str(settings_file), str(out)],
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    result = json.loads(out.read_text())
    steps = result["steps"]
    summary = summarize(launched, steps[0]["time"], steps, result["peak_memory_mb"])
    return {**summary, "launch_to_training_s": result["train_began"] - launched}


def summarize(launched: float, first_step_at: float, steps: list[dict], peak_mb: float) -> dict:
    tokens = steps[-1]["num_tokens"] - steps[0]["num_tokens"]
    seconds = steps[-1]["time"] - steps[0]["time"]
    return {
        "tokens_per_second": tokens / seconds,
        "launch_to_first_step_s": first_step_at - launched,
        "peak_memory_mb": peak_mb,
        "losses": [s["loss"] for s in steps],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--cutoff", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--plain-gradient-checkpointing",
        action="store_true",
        help="leave TRL's default (on) in the plain script; by default it is turned off, as in the workbench",
    )
    args = parser.parse_args()
    settings = {
        "rows": args.rows,
        "cutoff_len": args.cutoff,
        "batch_size": args.batch,
        "max_steps": args.steps,
        "threads": args.threads,
        "learning_rate": 2e-4,
        "lr_scheduler_type": "constant",
        "seed": 42,
        "lora_r": 8,
        "lora_alpha": 16,
        "plain_gradient_checkpointing": args.plain_gradient_checkpointing,
    }
    model_dir = models.resolve("smollm2-135m-instruct").path  # converted before anything is timed
    os.environ["WORKBENCH_MODELS"] = str(Path(model_dir).parent)  # ...and reused by the workers' scratch home
    runners = {
        "workbench": lambda work: run_workbench(settings, work),
        "workbench, warm": lambda work: run_workbench(settings, work, warm=True),
        "plain TRL": lambda work: run_plain(settings, work, model_dir),
    }
    results: dict[str, list[dict]] = {name: [] for name in runners}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["WORKBENCH_HOME"] = str(work / "home")
        spawn.ensure_launcher()  # the UI starts one too; it warms up before anything is timed
        while not spawn.socket_path().exists():  # listening: the training stack is imported
            time.sleep(0.2)
        try:
            run_rounds(args.rounds, runners, results, work)
        finally:
            os.kill(spawn.running_launcher(), signal.SIGTERM)
    report(settings, results)


def run_rounds(rounds: int, runners: dict, results: dict[str, list[dict]], work: Path) -> None:
    for round_ in range(rounds):
        for name, run in runners.items():
            result = run(work)
            results[name].append(result)
            print(
                f"round {round_ + 1} {name:16} {result['tokens_per_second']:7.1f} tok/s  "
                f"launch->training {result['launch_to_training_s']:5.1f} s  "
                f"launch->step1 {result['launch_to_first_step_s']:5.1f} s  "
                f"peak {result['peak_memory_mb']:7.0f} MiB",
                flush=True,
            )


def report(settings: dict, results: dict[str, list[dict]]) -> None:
    med = {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0] if key != "losses"}
        for name, runs in results.items()
    }
    plain = med["plain TRL"]
    names = [n for n in med if n != "plain TRL"]
    print(f"\nsettings: {json.dumps(settings)}")
    print(f"median of {len(results['plain TRL'])} rounds; ratio = workbench / plain TRL")
    print(f"{'':24}" + "".join(f"{n:>18}" for n in [*names, "plain TRL"]) + "".join(f"{'ratio':>8}" for _ in names))
    for key, label in (
        ("tokens_per_second", "real tokens/s"),
        ("launch_to_training_s", "launch to training (s)"),
        ("launch_to_first_step_s", "launch to step 1 (s)"),
        ("peak_memory_mb", "peak memory (MiB)"),
    ):
        cells = "".join(f"{med[n][key]:18.1f}" for n in [*names, "plain TRL"])
        ratios = "".join(f"{med[n][key] / plain[key]:8.2f}" for n in names)
        print(f"{label:24}{cells}{ratios}")
    pairs = zip(results["workbench"][0]["losses"], results["plain TRL"][0]["losses"], strict=True)
    diffs = [abs(a - b) for a, b in pairs]
    print(f"per-step losses, workbench: {[round(x, 4) for x in results['workbench'][0]['losses']]}")
    print(f"per-step losses, plain TRL: {[round(x, 4) for x in results['plain TRL'][0]['losses']]}")
    print(f"largest per-step loss difference: {max(diffs):.2e}")


if __name__ == "__main__":
    main()
