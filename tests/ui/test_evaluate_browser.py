"""The Evaluate tab in a real headless Chromium: a short run with a held-out test set (trained by the CLI, which
keeps its best checkpoint), evaluated from the page against its base with the forgetting probe; every metric for
base and tuned, the per-example table, the chart; then the Runs tab names the best step and Compare runs shows the
evaluation's figures. The data home lies where a user's does (under ~/.cache)."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import PRESETS
from tests.test_training import cli
from tests.ui.browser import App, open_tab, set_number, shot
from workbench.runs.store import JobStore

pytestmark = pytest.mark.slow

# Identity conversations to train on (a fifth held out as the test set), alpaca rows to validate on: six steps at a
# high learning rate, the eval loss every two, the best checkpoint kept (early stopping). About a minute here.
CONFIG = {
    "name": "evaluated",
    "data": {
        "datasets": [
            {
                "path": str(PRESETS / "data/identity.json"),
                "max_samples": 20,
                "fill": {"name": "Zorblax", "author": "Quillon Labs"},
            },
            {"path": str(PRESETS / "data/alpaca_en_demo.json"), "max_samples": 4, "use": "validation"},
        ],  # fmt: skip
        "cutoff_len": 96,
        "test_size": 0.2,
    },
    "method": {"name": "lora", "r": 8, "alpha": 16},
    "train": {
        "max_steps": 6,
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
EXAMPLES, PROBE_QUESTIONS = 3, 8
METRIC_LABELS = ("BLEU", "chrF", "ROUGE-L", "exact match", "contains answer", "reply length (words)")


def test_evaluate_a_finished_run_from_the_page(browser, outside_home, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(outside_home))
    outside_home.mkdir(parents=True)
    (outside_home / "run.yaml").write_text(yaml.safe_dump(CONFIG))
    trained = cli("train", str(outside_home / "run.yaml"), home=outside_home)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    (job,) = JobStore().list()
    best = job.files.read_status()["best_step"]

    app = App(outside_home).start()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app.url)
        open_tab(page, "Evaluate")
        page.locator("#evaluate-run input").click()
        page.get_by_role("option", name=re.compile(job.id)).click()
        page.locator("#evaluate-status").get_by_text("Not evaluated yet").wait_for(timeout=30_000)
        set_number(page, "evaluate-limit", str(EXAMPLES))
        set_number(page, "evaluate-probe-limit", str(PROBE_QUESTIONS))
        page.locator("#evaluate-start").click()
        page.locator("#evaluate-status").get_by_text("Evaluating…").wait_for(timeout=30_000)
        page.locator("#evaluate-status").get_by_text("Evaluated").wait_for(timeout=400_000)

        metrics = _table(page, "#evaluate-metrics")
        assert metrics[0][:4] == ["metric", "base", "tuned", "change"], metrics[0]
        rows = {row[0]: row[1:] for row in metrics[1:]}
        for label in (*METRIC_LABELS, "probe accuracy"):
            base, tuned, change = rows[label]
            assert re.fullmatch(r"[0-9.]+%?", base) and re.fullmatch(r"[0-9.]+%?", tuned), (label, rows[label])
            assert re.fullmatch(r"[+-][0-9.]+", change), (label, change)
        assert re.fullmatch(r"[0-9.]+%", rows["probe retention"][1]), rows
        examples = _table(page, "#evaluate-examples")
        assert examples[0][:4] == ["prompt", "reference", "base reply", "tuned reply"]
        assert len(examples) - 1 == EXAMPLES and all(row[0] and row[1] for row in examples[1:]), examples
        page.locator("#evaluate-chart img").wait_for(timeout=30_000)
        assert page.locator("#evaluate-probe-line").get_by_text("Retention").count() == 1
        shot(page, "16-evaluate")

        # The Runs tab: the best checkpoint's step, and Compare runs with the evaluation's figures.
        open_tab(page, "Runs")
        page.locator("#runs-selector input").click()
        page.get_by_role("option", name=re.compile(job.id)).click()
        page.locator("#runs-progress").get_by_text(f"The result is the best checkpoint: step {best}").wait_for(
            timeout=30_000
        )
        page.locator("#runs-loss").get_by_text("eval_loss").wait_for(timeout=30_000)  # the chart's legend
        page.locator("#runs-compare input").click()
        page.get_by_role("option", name=re.compile(job.id)).click()
        page.keyboard.press("Escape")
        page.locator("#runs-compare-table").get_by_text("eval chrF").wait_for(timeout=30_000)
        compare = _table(page, "#runs-compare-table")
        figures = dict(zip(compare[0], compare[1], strict=True))
        assert figures["best step"] == str(best)
        assert re.fullmatch(r"[0-9.]+ \([+-][0-9.]+\)", figures["eval chrF"]), figures
        assert re.fullmatch(r"[0-9.]+", figures["probe retention"]), figures

        # In Chinese: the same evaluation, its metrics named in the page's language.
        page.locator("#page-language").get_by_text("简体中文").click()
        open_tab(page, "评估")
        page.locator("#evaluate-status").get_by_text("已评估").wait_for(timeout=30_000)
        page.locator("#evaluate-metrics").get_by_text("完全匹配").wait_for(timeout=30_000)
        assert _table(page, "#evaluate-metrics")[0][:4] == ["指标", "基础模型", "微调模型", "变化"]
        shot(page, "zh-6-evaluate")
    finally:
        app.stop()


def _table(page, selector: str) -> list[list[str]]:
    """A Gradio Dataframe as rows of cell texts, its header first (Gradio 6 draws the body as rows of grid cells)."""
    header = [c.inner_text().strip() for c in page.locator(f"{selector} thead th").all()]
    rows = page.locator(f"{selector} [role=row].virtual-row").all()
    return [header, *[[c.inner_text().strip() for c in row.locator("[role=gridcell]").all()] for row in rows]]
