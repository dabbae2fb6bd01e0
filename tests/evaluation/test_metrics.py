"""The scores and the probe's answer key, without a model: fast."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from tests.conftest import PRESETS
from workbench.evaluation import metrics, probe, report

PROBE = [json.loads(line) for line in (PRESETS / "probe" / "general.jsonl").read_text().splitlines()]


def _task_module():
    # The lm-eval task's own scoring, loaded the way lm-eval loads it: from the file beside the task YAML.
    spec = importlib.util.spec_from_file_location("probe_task", PRESETS / "probe" / "probe_task.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("reply", "answers", "expected"),
    [
        ("The capital of France is Paris.", ["Paris"], 1),
        ("PARIS!", ["Paris"], 1),
        ("Parisian cafés", ["Paris"], 0),  # whole words only
        ("There are 1,000 grams in a kilogram.", ["1000"], 1),
        ("It is 156.", ["56"], 0),
        ("7 x 8 = 56", ["56"], 1),
        ("Eight legs", ["8", "eight"], 1),
        ("The capital is Washington, D.C.", ["Washington, D.C."], 1),
        ("Bogotá", ["Bogota", "Bogotá"], 1),
        ("", ["Paris"], 0),
        ("H2O", ["H2O"], 1),
    ],
)
def test_contains_answer_agrees_with_the_lm_eval_task(reply, answers, expected):
    task = _task_module()
    doc = {"answer": answers[0], "aliases": answers[1:]}
    assert metrics.contains_answer(reply, answers) == expected
    assert task.process_results(doc, [reply]) == {"contains_answer": expected}


def test_probe_answer_key_is_complete_and_checked():
    assert len(PROBE) >= 250
    assert len({row["id"] for row in PROBE}) == len(PROBE)
    assert {row["category"] for row in PROBE} == {"capitals", "arithmetic", "units", "facts"}
    for row in PROBE:
        assert row["question"].endswith("?") and row["answer"].strip(), row
        # An answer that the question already contains would be "found" in a reply that only repeats it.
        words = f" {metrics.normalise(row['question'])} "
        assert not any(f" {metrics.normalise(a)} " in words for a in [row["answer"], *row["aliases"]]), row
    arithmetic = {"plus": int.__add__, "minus": int.__sub__, "times": int.__mul__, "divided by": int.__floordiv__}
    for row in (r for r in PROBE if r["category"] == "arithmetic"):
        found = re.fullmatch(r"What is (\d+) (plus|minus|times|divided by) (\d+)\?", row["question"])
        if found:
            a, op, b = int(found[1]), found[2], int(found[3])
            assert op != "divided by" or a % b == 0, row
            assert arithmetic[op](a, b) == int(row["answer"]), row
        else:
            root = re.fullmatch(r"What is the square root of (\d+)\?", row["question"])
            assert int(row["answer"]) ** 2 == int(root[1]), row


def test_example_scores_cover_every_metric():
    same = metrics.example_scores("The capital of France is Paris.", "The capital of France is Paris.")
    other = metrics.example_scores("I do not know.", "The capital of France is Paris.")
    assert set(same) == set(metrics.METRICS)
    assert same["bleu"] == pytest.approx(100) and same["chrf"] == pytest.approx(100) and same["rouge_l"] == 100
    assert same["exact_match"] == same["contains_answer"] == 1 and same["reply_words"] == 6
    assert other["bleu"] < 10 and other["chrf"] < 30 and other["exact_match"] == 0


def test_retention_counts_what_the_base_knew():
    def answer(id_: str, correct: int) -> probe.ProbeAnswer:
        return probe.ProbeAnswer(id_, "facts", f"q{id_}", "a", "reply", correct, correct)

    base = [answer("1", 1), answer("2", 1), answer("3", 1), answer("4", 0)]
    tuned = [answer("1", 1), answer("2", 0), answer("3", 1), answer("4", 1)]
    found = probe.retention(base, tuned)
    assert found["retention"] == pytest.approx(2 / 3) and found["kept"] == 2 and found["gained"] == 1
    assert found["warning"] and [x["id"] for x in found["lost"]] == ["2"]


def test_model_card_section_is_replaced_not_repeated(tmp_path):
    card = tmp_path / "README.md"
    card.write_text("# A model\n\nTrained.\n")
    figures = {"bleu": 10.0, "chrf": 20.0, "rouge_l": 30.0, "exact_match": 0.0, "contains_answer": 0.5}
    result = {"metrics": {"base": figures, "tuned": {**figures, "chrf": 40.0}}, "examples_count": 3}
    report.add_to_card(card, result)
    report.add_to_card(card, result)
    text = card.read_text()
    assert text.startswith("# A model") and text.count("## Evaluation") == 1
    assert "| chrF | 20.0 | 40.0 | +20.0 |" in text


def test_a_run_without_a_test_set_says_how_to_get_one(tmp_path):
    from workbench.config import parse_config, save_config
    from workbench.evaluation.run import EvaluationError, run_examples
    from workbench.runs.files import RunFiles

    files = RunFiles(tmp_path)
    save_config(parse_config({"data": {"datasets": [{"path": str(PRESETS / "data/identity.json")}]}}), files.config)
    with pytest.raises(EvaluationError, match="kept no test set .*data.test_size.*--data FILE"):
        run_examples(files, None, "test", None)
    with pytest.raises(EvaluationError, match="no dataset with use: validation"):
        run_examples(files, None, "validation", None)
    examples, source = run_examples(files, PRESETS / "data/alpaca_en_demo.json", "test", 3)
    assert source == "alpaca_en_demo.json" and len(examples) == 3
    assert examples[0].prompt[-1]["role"] == "user" and examples[0].reference


def test_headline_figures_for_compare_runs():
    figures = {"chrf": 20.0, "rouge_l": 30.0, "contains_answer": 0.25}
    result = {"metrics": {"base": figures, "tuned": {**figures, "chrf": 35.5}}, "probe": {"retention": 0.875}}
    found = report.headline(result)
    assert found["eval chrF"] == 35.5 and found["eval chrF change"] == 15.5
    assert found["eval contains answer"] == 25.0 and found["probe retention"] == 87.5
