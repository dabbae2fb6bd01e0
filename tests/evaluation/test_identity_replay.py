"""The identity preset as it ships (its replay share of general instructions included) learns a new name and keeps
what the base model knew: trained and evaluated through the CLI, as a user does."""

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
# base answers about 55 % of them, so one question lost moves retention by ~1.5 points.
PROBE_LIMIT = 120


# Not met yet (bench/results/forgetting.json, README "Keeping what the model knew"): no measured setup keeps 90 % of
# the probe while it learns the name; an adapter that learned no name (LoRA r 2 on q, v, measured once) lost 18 %. Not
# run until a setup meets it (~10 minutes).
@pytest.mark.xfail(reason="no measured identity setup keeps 90 % of the probe yet", run=False)
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
    assert probe["base_correct"] >= 60, probe["base_correct"]  # the subset still measures something
    assert probe["retention"] >= RETENTION_WARNING, [(q["question"], q["tuned_reply"]) for q in probe["lost"]]
