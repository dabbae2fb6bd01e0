"""Every registered method, trained the same few steps on the same data: a comparison table.

    python bench/methods.py [--steps 8] [--rows 32] [--cutoff 256] [--batch 4] [--threads 2] [--methods a,b]

Each method trains through the worker (a fresh `python -m workbench.worker` process, as a run from the UI or
the CLI does) on the bundled SmolLM2-135M-Instruct, with its registered defaults and the learning rate usual for
its kind (below), on the first rows of LLaMA-Factory's alpaca demo, the same seed and batch for all. Columns:
trainable parameters and their share of the model; peak memory (the worker's peak resident memory on a CPU, peak
allocated memory on a GPU); seconds per step over steps 2..N (step 1 includes warm-up); the training loss at
the last step; the size of the saved weights (adapter, or whole model for full and freeze tuning).
Writes bench/results/methods.json and prints the table as Markdown (the README shows it).
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
from workbench import methods, models  # noqa: E402
from workbench.config import parse_config  # noqa: E402
from workbench.runs.summary import summarize  # noqa: E402

DATA = REPO / "presets" / "data" / "alpaca_en_demo.json"
RESULTS = REPO / "bench" / "results" / "methods.json"
# Learning rates usual for each kind of method: whole weights move in small steps, learned prompts in large ones.
LEARNING_RATES = {"full": 2e-5, "freeze": 5e-5, "prefix": 1e-2, "prompt": 3e-2, "ptuning": 1e-2, "ia3": 3e-3}
DEFAULT_LEARNING_RATE = 2e-4


def run_method(name: str, args: argparse.Namespace, work: Path) -> dict:
    config = parse_config(
        {
            "name": f"bench {name}",
            "model": {"name_or_path": "smollm2-135m-instruct"},
            "data": {"datasets": [{"path": str(DATA), "max_samples": args.rows}], "cutoff_len": args.cutoff},
            "method": {"name": name},
            "train": {
                "max_steps": args.steps,
                "learning_rate": LEARNING_RATES.get(name, DEFAULT_LEARNING_RATE),
                "per_device_train_batch_size": args.batch,
                "threads": args.threads,
                **STEADY_TRAIN,
            },
        }
    )
    files, error = train_in_worker(config)
    if error:
        return {"method": name, "error": error}
    summary = summarize(files, "finished")
    return {
        "method": name,
        "title": methods.get(name).title,
        "learning_rate": config.train.learning_rate,
        **asdict(summary),
        "share": summary.share,
        "weights_mb": summary.weights_bytes / 2**20,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| method | trainable params | share | peak memory | s/step | loss: step 1 → last | saved weights |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['method']} | failed: {r['error'].splitlines()[-1][:80]} ||||||")
            continue
        lines.append(
            f"| {r['title']} | {r['trainable_params']:,} | {r['share']:.3%} | {r['peak_memory_mb']:,.0f} MiB "
            f"| {r['seconds_per_step']:.2f} | {r['first_loss']:.3f} → {r['final_loss']:.3f} "
            f"| {_size(r['weights_mb'])} |"
        )
    return "\n".join(lines)


def _size(mb: float) -> str:
    return f"{mb * 1024:,.0f} KiB" if mb < 1 else f"{mb:,.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--cutoff", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", default=",".join(methods.names()), help="comma-separated method names")
    args = parser.parse_args()
    model_dir = models.resolve("smollm2-135m-instruct").path  # converted before anything is timed
    os.environ["WORKBENCH_MODELS"] = str(Path(model_dir).parent)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-methods-") as tmp:
        os.environ["WORKBENCH_HOME"] = tmp
        for name in args.methods.split(","):
            started = time.time()
            rows.append(run_method(name, args, Path(tmp)))
            print(f"{name}: {time.time() - started:.0f} s", file=sys.stderr, flush=True)
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
