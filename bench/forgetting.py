"""Learning a new name without forgetting the rest: the identity preset with and without replay, and a third setup.

    python bench/forgetting.py [--threads 2] [--probe-limit N] [--setup NAME ...] [--reuse setup=RUN_DIR ...]

Each setup trains `presets/sft-lora-identity.yaml` (the names filled with Zorblax and Quillon Labs, which the
bundled model has never heard of) through the worker, as a run from the UI or the CLI does:

- `half replay as base distributions, KL 1`: the preset as it ships: the identity rows mixed half and half with
  general instructions (alpaca_en_demo), those learned as the base model's own next-token distributions along
  alpaca's replies (`answers: base_distribution`), and every token held near the base (`stage.kl_to_base: 1`);
  `no replay, KL 1`, the preset without its replay dataset; `IA3 ...`, the preset with another method (at the rate
  bench/methods.py gives it);
  `replay as base distributions, KL 1`, the same with 0.3 of the mix replayed;
- `alpaca replay`: plain supervised fine-tuning, 0.3 of the mix alpaca's replies learned as they are (the other
  setups replay 0.3 too);
- `no replay`: plain, the identity rows alone (the issue's starting point);
- `lr 2e-4, ...`: the other cure for forgetting, a five times smaller step;
- `replay with base answers`: the replay rows' prompts answered by the base model itself (`answers: base`, written
  by the worker before training); with `lr 5e-4, 2 epochs`, each kind of replay at a milder rate;
- `replay as base distributions` and `alpaca replay, KL 1`: the preset's two holds on the base, one at a time;
- `LoRA r 2 on q, v, alpaca replay`: the smallest adapter of the classic LoRA paper, which learns no name: the
  floor of what any update costs the probe.

Then, per setup: *identity*, how many of the data's English questions whose answer names the assistant get a
greedy reply that contains the new name; *retention*, of the general-knowledge probe questions the base model
answers correctly (presets/probe, through lm-evaluation-harness, as `eval RUN --probe` asks them), the share the
tuned model still does; the training's minutes on this CPU (the job's wall time, model load included). The base
model answers the probe once for all setups (its answers are kept in bench/results/forgetting-base.json). Writes
bench/results/forgetting.json, where setups not run this time keep their earlier rows, and prints the table as
Markdown (the README shows it). `--reuse SETUP=RUN_DIR` evaluates a finished run instead of training it again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from bench.worker_run import run_to_the_end  # noqa: E402
from workbench import models  # noqa: E402
from workbench.config import parse_config  # noqa: E402
from workbench.evaluation.probe import ProbeAnswer  # noqa: E402
from workbench.runs.files import RunFiles  # noqa: E402

PRESET = REPO / "presets" / "sft-lora-identity.yaml"
IDENTITY = REPO / "presets" / "data" / "identity.json"
RESULTS = REPO / "bench" / "results" / "forgetting.json"
FILL = {"name": "Zorblax", "author": "Quillon Labs"}
SETUPS = {
    "half replay as base distributions, KL 1": lambda c: c,
    "no replay, KL 1": lambda c: _without_replay(c),
    "IA3 at lr 3e-3, half replay as base distributions, KL 1": lambda c: _rate(c | {"method": {"name": "ia3"}}, 3e-3),
    "replay as base distributions, KL 1": lambda c: _shares(c, 0.3),
    "alpaca replay": lambda c: _plain(c),
    "no replay": lambda c: _without_replay(_plain(c)),
    "lr 2e-4, alpaca replay": lambda c: _rate(_plain(c), 2e-4),
    "lr 2e-4, no replay": lambda c: _rate(_without_replay(_plain(c)), 2e-4),
    "replay with base answers": lambda c: _answers(_plain(c), "base"),
    "lr 5e-4, 2 epochs, alpaca replay": lambda c: _rate(_plain(c), 5e-4, epochs=2),
    "lr 5e-4, 2 epochs, replay with base answers": lambda c: _rate(_answers(_plain(c), "base"), 5e-4, epochs=2),
    "replay as base distributions": lambda c: _shares(_held(c, 0.0), 0.3),
    "alpaca replay, KL 1": lambda c: _shares(_answers(c, "data"), 0.3),
    "LoRA r 2 on q, v, alpaca replay": lambda c: (
        _plain(c) | {"method": c["method"] | {"r": 2, "alpha": 4, "target_modules": ["q_proj", "v_proj"]}}
    ),
}


def _plain(config: dict) -> dict:
    """Plain supervised fine-tuning: the replay rows' own replies at 0.3 of the mix, no KL term to the base."""
    return _shares(_held(_answers(config, "data"), 0.0), 0.3)


def _held(config: dict, kl: float) -> dict:
    return config | {"stage": {"name": "sft", "kl_to_base": kl}}


def _shares(config: dict, replay: float) -> dict:
    """The replay dataset at `replay` of the mix's rows (the preset's: 0.3)."""
    first, second = config["data"]["datasets"]
    datasets = [first | {"share": round(1 - replay, 6)}, second | {"share": replay}]
    return config | {"data": config["data"] | {"datasets": datasets}}


def _without_replay(config: dict) -> dict:
    alone = {key: value for key, value in config["data"]["datasets"][0].items() if key != "share"}
    return config | {"data": config["data"] | {"datasets": [alone]}}


def _rate(config: dict, rate: float, epochs: float | None = None) -> dict:
    train = config["train"] | {"learning_rate": rate}
    return config | {"train": train | ({"num_train_epochs": epochs} if epochs else {})}


def _answers(config: dict, answers: str) -> dict:
    """What the replay dataset's rows teach (DatasetSpec.answers): alpaca's replies (data), the base model's replies
    to their prompts (base) or its distributions along alpaca's replies (base_distribution)."""
    first, replay = config["data"]["datasets"]
    return config | {"data": config["data"] | {"datasets": [first, replay | {"answers": answers}]}}


def identity_questions() -> list[str]:
    """The data's English prompts whose answer gives the assistant's name."""
    rows = json.loads(IDENTITY.read_text())
    return [r["instruction"] for r in rows if "{{name}}" in r["output"] and r["instruction"].isascii()]


def names_given(files: RunFiles, questions: list[str], name: str) -> list[dict]:
    """Each question's greedy reply from the tuned model, and whether it contains `name`."""
    from workbench.chat import ChatEngine
    from workbench.evaluation.generate import replies

    engine = ChatEngine.for_run(files)
    prompts = [[{"role": "user", "content": q}] for q in questions]
    answers = replies(engine.model, engine.tokenizer, prompts, batch_size=12, max_new_tokens=32)
    return [
        {"question": q, "reply": a, "named": bool(re.search(re.escape(name), a, re.I))}
        for q, a in zip(questions, answers, strict=True)
    ]


def probe_answers(files: RunFiles | None, limit: int | None) -> list:
    """The probe's answers from the run's tuned model, or with `files` None from the bundled base model."""
    from workbench.evaluation import probe, run

    if files is None:
        model = probe.ModelUnderTest(pretrained=models.resolve("smollm2-135m-instruct").path)
    else:
        model = run._models(files, files.read_config())["tuned"]
    return probe.answers(probe.run_tasks(model, [probe.TASK], limit=limit))


def run_setup(label: str, args: argparse.Namespace, base: list, reused: Path | None) -> dict:
    from workbench.evaluation import probe

    raw = yaml.safe_load(PRESET.read_text())
    raw["data"]["datasets"][0]["fill"] = FILL
    raw = SETUPS[label](raw)
    raw["train"] = raw["train"] | {"threads": args.threads, "report_to": []}
    for spec in raw["data"]["datasets"]:  # relative to the preset, as load_config reads them
        spec["path"] = str(PRESET.parent / spec["path"])
    if reused is None:
        job = run_to_the_end(parse_config(raw | {"name": f"forgetting bench: {label}"}))
        if job.state != "finished":
            return {"setup": label, "error": job.error or job.state}
        files, minutes = job.files, (job.finished_at - job.started_at) / 60
    else:
        files, minutes = RunFiles(reused), None
        status = files.read_status()
        if status.get("started_at") and status.get("updated_at"):
            minutes = (status["updated_at"] - status["started_at"]) / 60
    config = files.read_config()
    named = names_given(files, identity_questions(), FILL["name"])
    began = time.time()
    kept = probe.retention(base, probe_answers(files, args.probe_limit))
    return {
        "setup": label,
        "run": files.root.name,
        "datasets": [{"path": Path(d.path).name, "share": d.share} for d in config.data.datasets],
        "learning_rate": config.train.learning_rate,
        "r": getattr(config.method, "r", None),  # None for methods without a rank
        "kl_to_base": getattr(config.stage, "kl_to_base", 0.0),
        "answers": [d.answers for d in config.data.datasets],
        "epochs": config.train.num_train_epochs,
        "train_minutes": minutes,
        "identity": sum(n["named"] for n in named),
        "identity_questions": len(named),
        "replies": named,
        "retention": kept["retention"],
        "kept": kept["kept"],
        "base_correct": kept["base_correct"],
        "gained": kept["gained"],
        "lost": [{"question": q["question"], "tuned_reply": q["tuned_reply"]} for q in kept["lost"]],
        "probe_s": round(time.time() - began, 1),
    }


def _probe_digest() -> str:
    from workbench.evaluation.probe import PROBE_DIR

    return hashlib.sha256((PROBE_DIR / "general.jsonl").read_bytes()).hexdigest()[:16]


def table(rows: list[dict], base_correct: int, questions: int) -> str:
    lines = [
        f"| setup | identity answers | retention (of the {base_correct} the base knows) "
        f"| probe accuracy (base {base_correct}/{questions}) | training, min |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['setup']} | failed: {r['error'].splitlines()[-1][:80]} ||||")
            continue
        minutes = "?" if r["train_minutes"] is None else f"{r['train_minutes']:.1f}"
        lines.append(
            f"| {r['setup']} | {r['identity']}/{r['identity_questions']} | {r['retention']:.1%} "
            f"({r['kept']}/{r['base_correct']}) | {r['kept'] + r['gained']}/{questions} | {minutes} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--probe-limit", type=int, help="only the probe's first N questions (screening)")
    parser.add_argument(
        "--setup", action="append", choices=list(SETUPS), help="run only these (repeat it); default: all"
    )
    parser.add_argument("--reuse", action="append", default=[], metavar="SETUP=RUN_DIR")
    args = parser.parse_args()
    reuse = dict(item.split("=", 1) for item in args.reuse)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(args.threads)
    model_dir = models.resolve("smollm2-135m-instruct").path  # converted before anything is timed
    os.environ["WORKBENCH_MODELS"] = str(Path(model_dir).parent)
    began = time.time()
    # The base's answers are kept beside the results: one probe of the base (~4 minutes) serves every later run.
    cached = RESULTS.with_name("forgetting-base.json")
    key = {"limit": args.probe_limit, "probe": _probe_digest()}
    if cached.is_file() and json.loads(cached.read_text())["key"] == key:
        base = [ProbeAnswer(**a) for a in json.loads(cached.read_text())["answers"]]
    else:
        base = probe_answers(None, args.probe_limit)
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps({"key": key, "answers": [a.__dict__ for a in base]}, indent=1) + "\n")
    print(f"base probe: {sum(a.correct for a in base)}/{len(base)}, {time.time() - began:.0f} s", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-forgetting-") as tmp:
        os.environ["WORKBENCH_HOME"] = tmp
        for label in args.setup or list(SETUPS):
            started = time.time()
            rows.append(run_setup(label, args, base, Path(reuse[label]) if label in reuse else None))
            print(f"{label}: {time.time() - started:.0f} s {rows[-1]}", file=sys.stderr, flush=True)
    settings = {"threads": args.threads, "probe_limit": args.probe_limit, "fill": FILL}
    # Setups not run this time keep their earlier rows (measured with the same settings): one can be re-run alone.
    earlier = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    if earlier.get("settings") == json.loads(json.dumps(settings)):
        done = {r["setup"] for r in rows}
        rows = [r for r in earlier["rows"] if r["setup"] not in done and r["setup"] in SETUPS] + rows
    rows.sort(key=lambda r: list(SETUPS).index(r["setup"]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "settings": settings,
                "machine": platform.processor() or platform.machine(),
                "base_probe": {"correct": sum(a.correct for a in base), "questions": len(base)},
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(table(rows, sum(a.correct for a in base), len(base)))


if __name__ == "__main__":
    main()
