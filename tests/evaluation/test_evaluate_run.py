"""A run that stops early, then `eval` of it through the CLI: the test set's metrics for base and tuned, the probe
through lm-evaluation-harness with no network, and the evaluation in the model card and the export zip."""

from __future__ import annotations

import json
import zipfile

import pytest
import yaml

from tests.conftest import PRESETS
from tests.test_training import cli
from workbench.evaluation.metrics import METRICS
from workbench.runs.store import JobStore

pytestmark = pytest.mark.slow

PROBE_LIMIT = 16


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Identity conversations to train on, alpaca rows to validate on (unlike them, so a high learning rate soon
    makes their loss rise), a fifth of the identity rows held out as the test set; (home, job)."""
    home = tmp_path_factory.mktemp("eval-home")
    config = {
        "name": "early stopping",
        "data": {
            "datasets": [
                {
                    "path": str(PRESETS / "data/identity.json"),
                    "max_samples": 24,
                    "fill": {"name": "Zorblax", "author": "Quillon Labs"},
                },
                {"path": str(PRESETS / "data/alpaca_en_demo.json"), "max_samples": 8, "use": "validation"},
            ],  # fmt: skip
            "cutoff_len": 128,
            "test_size": 0.2,
        },
        "method": {"name": "lora", "r": 8, "alpha": 16},
        "train": {
            "max_steps": 30,
            "learning_rate": 5e-3,
            "lr_scheduler_type": "constant",
            "per_device_train_batch_size": 4,
            "eval_steps": 2,
            "early_stopping_patience": 2,
            "save_steps": 50,
            "threads": 1,
            "report_to": [],
        },  # fmt: skip
    }
    path = home / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    result = cli("train", str(path), home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    (job,) = JobStore(home / "jobs.sqlite").list()
    return home, job, result.stdout


@pytest.fixture(scope="module")
def evaluated(run):
    """`eval RUN --probe` with any hub address unreachable: everything must be read from this machine."""
    home, job, _ = run
    import os

    os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"  # the discard port: a request would fail at once
    try:
        limits = ["--max-new-tokens", "24", "--probe", "--probe-limit", str(PROBE_LIMIT), "--threads", "1"]
        result = cli("eval", job.id, *limits, home=home)
    finally:
        del os.environ["HF_ENDPOINT"]
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((job.files.evaluation / "report.json").read_text()), result.stdout


def test_early_stopping_stops_and_keeps_the_best_checkpoint(run):
    from safetensors.torch import load_file

    _, job, stdout = run
    status = job.files.read_status()
    evals = {r["step"]: r["eval_loss"] for r in job.files.read_metrics() if "eval_loss" in r}
    assert status["stopped_early"] and status["step"] < status["max_steps"] == 30, status
    # Patience 2: it stopped two evaluations after the best one, which has the lowest eval loss.
    assert status["best_step"] == min(evals, key=evals.get) == status["step"] - 4, evals
    assert f"(the best checkpoint, step {status['best_step']}); stopped early at step {status['step']}" in stdout

    adapter = load_file(job.files.adapter / "adapter_model.safetensors")
    best = load_file(job.files.checkpoints / f"checkpoint-{status['best_step']}" / "adapter_model.safetensors")
    last = load_file(job.files.checkpoints / f"checkpoint-{status['step']}" / "adapter_model.safetensors")
    assert adapter.keys() == best.keys()
    assert all((adapter[k] == best[k]).all() for k in adapter)
    assert any((adapter[k] != last[k]).any() for k in adapter)  # the last step is not what was kept
    assert f"best checkpoint's, step **{status['best_step']}**" in (job.files.adapter / "README.md").read_text()


def test_test_set_is_held_out_and_saved(run):
    _, job, _ = run
    test = [json.loads(line) for line in job.files.test_set.read_text().splitlines()]
    stats = job.files.read_status()["data_stats"]
    assert len(test) == stats["test_rows"] == 5 and stats["rows"] == 19  # 24 identity rows: 19 train, 5 test
    assert all(row["messages"][-1]["role"] == "assistant" for row in test)


def test_eval_gives_every_metric_for_base_and_tuned(run, evaluated):
    _, job, _ = run
    result, stdout = evaluated
    assert set(result["metrics"]) == {"base", "tuned"}
    for who in ("base", "tuned"):
        assert set(result["metrics"][who]) == set(METRICS), who
    # The adapter is on for one side and off for the other (the best checkpoint is an early one: which side
    # scores higher is not the point here).
    assert result["metrics"]["tuned"] != result["metrics"]["base"]
    assert any(r["base_reply"] != r["tuned_reply"] for r in result["examples"])
    rows = result["examples"]
    assert result["examples_count"] == len(rows) == 5
    assert {"prompt", "reference", "base_reply", "tuned_reply", "base_chrf", "tuned_chrf", "change_chrf"} <= set(
        rows[0]
    )
    changes = [abs(r["change_chrf"]) for r in rows]
    assert changes == sorted(changes, reverse=True)
    csv_lines = (job.files.evaluation / "examples.csv").read_text().splitlines()
    assert csv_lines[0].startswith("prompt,reference,base_reply,tuned_reply") and len(csv_lines) >= 6
    assert (job.files.evaluation / "metrics.png").read_bytes().startswith(b"\x89PNG")
    assert "chrF" in stdout and "probe retention" in stdout


def test_probe_runs_through_lm_eval_and_matches_the_workbench_reading(evaluated):
    result, _ = evaluated
    found = result["probe"]
    assert found["task"] == "workbench_probe" and found["questions"] == PROBE_LIMIT
    for who in ("base", "tuned"):
        answers = found[who]["answers"]
        assert [a["correct"] for a in answers] == [a["workbench_correct"] for a in answers], who
        assert found[who]["accuracy"] == pytest.approx(found[who]["workbench_accuracy"])
        assert found[who]["accuracy"] == pytest.approx(sum(a["correct"] for a in answers) / PROBE_LIMIT)
    # The first questions are capitals the bundled model knows (France, Germany, Italy, ...).
    assert found["base"]["accuracy"] >= 0.5
    base_right = {a["id"] for a in found["base"]["answers"] if a["correct"]}
    tuned_right = {a["id"] for a in found["tuned"]["answers"] if a["correct"]}
    assert found["retention"] == pytest.approx(len(base_right & tuned_right) / len(base_right))
    assert {x["id"] for x in found["lost"]} == base_right - tuned_right


def test_export_zip_and_model_card_carry_the_evaluation(run, evaluated, tmp_path):
    home, job, _ = run
    result, _ = evaluated
    card = (job.files.adapter / "README.md").read_text()
    assert "## Evaluation" in card and "retention" in card and "| chrF |" in card
    export = cli("export", job.id, "-o", str(tmp_path / "run.zip"), home=home)
    assert export.returncode == 0, export.stderr
    with zipfile.ZipFile(tmp_path / "run.zip") as zf:
        assert {"eval/report.json", "eval/examples.csv", "eval/metrics.png", "adapter/README.md"} <= set(zf.namelist())
        assert json.loads(zf.read("eval/report.json"))["metrics"] == result["metrics"]
        assert "## Evaluation" in zf.read("adapter/README.md").decode()


def test_a_base_model_is_evaluated_on_its_own(tmp_path):
    """`eval MODEL --base --data FILE`: the base side only, in the folder given."""
    result = cli("eval", "smollm2-135m-instruct", "--base", "--data", str(PRESETS / "data/alpaca_en_demo.json"),
                 "--limit", "2", "--max-new-tokens", "8", "--threads", "1", "-o", str(tmp_path / "out"),
                 home=tmp_path / "home")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    found = json.loads((tmp_path / "out" / "report.json").read_text())
    assert list(found["metrics"]) == ["base"] and set(found["metrics"]["base"]) == set(METRICS)
    assert found["examples_count"] == 2 and "2 examples from alpaca_en_demo.json" in result.stdout


def test_the_runs_summary_carries_the_best_step_and_the_evaluation(run, evaluated):
    """What Compare runs and the Runs tab read: the best step, headline figures, the forgetting warning."""
    from workbench.evaluation import report
    from workbench.runs.summary import summarize

    _, job, _ = run
    result, _ = evaluated
    summary = summarize(job.files, "finished")
    assert summary.best_step == job.files.read_status()["best_step"]
    assert summary.evaluation["eval chrF"] == round(result["metrics"]["tuned"]["chrf"], 2)
    assert summary.evaluation["probe retention"] == round(100 * result["probe"]["retention"], 1)
    assert summary.warnings == report.warnings(result)
    assert bool(summary.warnings) == result["probe"]["warning"]


def test_an_evaluation_started_in_a_process_of_its_own_leaves_its_report(run, tmp_path):
    """How the UI starts one (it never loads a model itself): a child process, its output in eval/log.txt."""
    import shutil

    from workbench.evaluation import launch
    from workbench.runs.files import RunFiles

    _, job, _ = run
    files = RunFiles(tmp_path / job.id)  # a copy: the other tests read the run's own report
    shutil.copytree(job.files.root, files.root, ignore=shutil.ignore_patterns("eval", "checkpoints"))
    assert launch.state(files) is None
    process = launch.start(files, limit=1, threads=1)
    assert launch.state(files) == "running"  # what the Evaluate tab reads: the process, from the run folder
    assert process.wait(timeout=300) == 0, (files.evaluation / launch.LOG).read_text()[-2000:]
    assert launch.state(files) == "finished"
    assert "tuned model: 1 replies" in (files.evaluation / launch.LOG).read_text()
    found = json.loads((files.evaluation / "report.json").read_text())
    assert found["examples_count"] == 1 and set(found["metrics"]) == {"base", "tuned"}
