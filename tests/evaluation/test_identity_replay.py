"""The identity preset as it ships (general instructions replayed as the base model's distributions, every token
held near the base by a KL term) learns a new name and keeps what the base model knew: trained and evaluated
through the CLI, as a user does (~10 minutes on 2 cores)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PRESETS
from tests.test_training import cli
from workbench.evaluation.probe import RETENTION_WARNING
from workbench.runs.store import JobStore

pytestmark = pytest.mark.slow

NAME, AUTHOR = "Zorblax", "Quillon Labs"  # names the bundled model has never heard of
# Questions from presets/data/identity.json whose answers give the name.
QUESTIONS = ["Who are you?", "What is your name?", "Can you introduce yourself?", "What are you called?"]
# The probe's first 120 questions: a sample of its four kinds in their proportions (the file interleaves them). The
# base answers 54 of them, so one question lost moves retention by ~1.9 points. The whole probe (273 questions, the
# base answers 151): bench/forgetting.py, README "Keeping what the model knew".
PROBE_LIMIT = 120


def test_the_identity_preset_learns_the_name_and_keeps_general_answers(tmp_path):
    home = tmp_path / "home"
    fill = f"data.datasets.0.fill={{name: {NAME}, author: {AUTHOR}}}"
    result = cli("train", str(PRESETS / "sft-lora-identity.yaml"), "--set", fill, "--set", "train.threads=2",
                 home=home, timeout=1800)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (job,) = JobStore(home / "jobs.sqlite").list()
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps([{"instruction": q, "output": f"I am {NAME}."} for q in QUESTIONS]))
    limits = ["--probe", "--probe-limit", str(PROBE_LIMIT), "--max-new-tokens", "32", "--threads", "2"]
    # The bundled model as the judge too (it is already here): the pairwise comparison through the CLI, both orders.
    limits += ["--judge", "smollm2-135m-instruct"]
    result = cli("eval", job.id, "--data", str(questions), *limits, home=home, timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((job.files.evaluation / "report.json").read_text())

    replies = {row["prompt"]: row["tuned_reply"] for row in report["examples"]}
    named = [q for q in QUESTIONS if NAME.lower() in replies[q].lower()]
    assert len(named) >= 3, replies
    assert not any(NAME.lower() in row["base_reply"].lower() for row in report["examples"])  # learned, not known
    verdicts = report["judge"]["verdicts"]
    assert len(verdicts) == len(QUESTIONS) and all(v["base_first"] and v["tuned_first"] for v in verdicts)
    assert report["judge"]["wins"] + report["judge"]["losses"] + report["judge"]["ties"] == len(QUESTIONS)
    probe = report["probe"]
    assert probe["base_correct"] >= 50, probe["base_correct"]  # the sample still measures something
    assert probe["retention"] >= RETENTION_WARNING, [(q["question"], q["tuned_reply"]) for q in probe["lost"]]
