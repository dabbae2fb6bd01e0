"""Every registered stage, trained the same few steps with LoRA: its cost, measured and as estimated before Start.

    python bench/stages.py [--steps 6] [--rows 32] [--cutoff 256] [--batch 4] [--threads 2] [--stages a,b]

Each stage trains through the worker (a fresh `python -m workbench.worker` process, as a run from the UI or the
CLI does) on the bundled SmolLM2-135M-Instruct with LoRA (r 8, all linear layers), on the first rows of its
sample data (presets/data: the alpaca demo for SFT, the preference demo for pair stages, the KTO demo, the
arithmetic prompts for GRPO / RLOO, the lighthouse text for continued pre-training). Columns: peak memory (the
worker's peak resident memory on a CPU) and seconds per step over steps 2..N, each beside the pre-flight estimate
(workbench/estimate.py, fed the data's mean token length as the Data tab does); the loss at the first and last
step; the stage's headline metric at the last step. Writes bench/results/stages.json and prints the table as
Markdown (the README shows it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.worker_run import STEADY_TRAIN, train_in_worker  # noqa: E402
from workbench import models, stages  # noqa: E402
from workbench.config import DatasetSpec, parse_config  # noqa: E402
from workbench.data.inspect import inspect_tokens  # noqa: E402
from workbench.estimate import estimate  # noqa: E402
from workbench.runs.summary import summarize  # noqa: E402

SAMPLES = REPO / "presets" / "data"
DATA = {
    "conversations": "alpaca_en_demo.json",
    "pairs": "dpo_en_demo.json",
    "labeled": "kto_en_demo.json",
    "prompts": "arithmetic_prompts.json",
    "text": "lighthouse.txt",
}
RESULTS = REPO / "bench" / "results" / "stages.json"
HEADLINE = {
    "dpo": "rewards/margins",
    "kto": "rewards/margins",
    "orpo": "rewards/margins",
    "simpo": "rewards/margins",
    "reward": "accuracy",
    "grpo": "reward",
    "rloo": "reward",
    "online_dpo": "objective/scores",
}
ONLINE = {
    "max_completion_length": 16,
    "rewards": ["contains_answer", "length"],
    "target_length": 8,
}


def _online_settings(spec) -> dict:
    """Short replies and rewards that can fire on arithmetic, for the stages that sample replies."""
    if not spec.samples:
        return {}
    return ONLINE | ({"num_generations": 4} if "num_generations" in spec.params.model_fields else {})


def run_stage(name: str, args: argparse.Namespace, work: Path, model_dir: str) -> dict:
    spec = stages.get(name)
    dataset = {"path": str(SAMPLES / DATA[spec.data]), "max_samples": args.rows}
    config = parse_config(
        {
            "name": f"bench {name}",
            "model": {"name_or_path": "smollm2-135m-instruct"},
            "data": {"datasets": [dataset], "cutoff_len": args.cutoff},
            "stage": {"name": name, **_online_settings(spec)},
            "method": {"name": "lora", "r": 8, "alpha": 16, "target_modules": "all-linear"},
            "train": {
                "max_steps": args.steps,
                "learning_rate": 5e-5,
                "per_device_train_batch_size": args.batch,
                "threads": args.threads,
                **STEADY_TRAIN,
            },
        }
    )
    files, error = train_in_worker(config)
    if error:
        return {"stage": name, "error": error}
    stats = inspect_tokens(DatasetSpec(**dataset), "smollm2-135m-instruct", args.cutoff, False)["stats"]
    predicted = estimate(config, model_dir, stats["total_tokens"] / stats["rows"], available_memory_mb=1e6)
    summary = summarize(files, "finished")
    logged = [r for r in files.read_metrics() if "loss" in r]
    key = HEADLINE.get(name)
    with_key = [r for r in logged if r.get(key) is not None]  # KTO logs margins only for batches with both kinds
    return {
        "stage": name,
        "title": spec.title,
        **asdict(summary),
        "estimated_memory_mb": predicted.peak_memory_mb,
        "estimated_seconds_per_step": predicted.seconds_per_step,
        "metric": key,
        "metric_first": with_key[0][key] if with_key else None,
        "metric_last": with_key[-1][key] if with_key else None,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| stage | peak memory (estimate) | s/step (estimate) | loss: step 1 → last | its metric: step 1 → last |",
        "|---|---:|---:|---:|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['stage']} | failed: {r['error'].splitlines()[-1][:80]} ||||")
            continue
        metric = f"{r['metric']} {_number(r['metric_first'])} → {_number(r['metric_last'])}" if r["metric"] else ""
        lines.append(
            f"| {r['title']} | {r['peak_memory_mb']:,.0f} MiB ({r['estimated_memory_mb']:,.0f}) "
            f"| {r['seconds_per_step']:.2f} ({r['estimated_seconds_per_step']:.2f}) "
            f"| {r['first_loss']:.3f} → {r['final_loss']:.3f} | {metric} |"
        )
    return "\n".join(lines)


def _merged_with_earlier(rows: list[dict], args: argparse.Namespace) -> list[dict]:
    """Re-measuring some stages keeps the others' rows from the last run with the same settings."""
    if not RESULTS.exists():
        return rows
    earlier = json.loads(RESULTS.read_text())
    same = {k: v for k, v in earlier["settings"].items() if k != "stages"} == {
        k: v for k, v in vars(args).items() if k != "stages"
    }
    if not same:
        return rows
    by_stage = {r["stage"]: r for r in earlier["rows"]} | {r["stage"]: r for r in rows}
    return [by_stage[name] for name in stages.names() if name in by_stage]


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--cutoff", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stages", default=",".join(stages.names()), help="comma-separated stage names")
    args = parser.parse_args()
    model_dir = models.resolve("smollm2-135m-instruct").path  # converted before anything is timed
    os.environ["WORKBENCH_MODELS"] = str(Path(model_dir).parent)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        os.environ["WORKBENCH_HOME"] = tmp
        for name in args.stages.split(","):
            started = time.time()
            try:
                rows.append(run_stage(name, args, Path(tmp), model_dir))
            except Exception as err:  # noqa: BLE001  one stage failing must not lose the others' figures
                rows.append({"stage": name, "error": f"{type(err).__name__}: {err}"})
            print(f"{name}: {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    rows = _merged_with_earlier(rows, args)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"settings": vars(args), "machine": platform.processor() or platform.machine(), "rows": rows}, indent=2
        )
        + "\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
