"""In a real browser, the preference loop: data of the wrong shape is refused at Start naming what DPO needs;
DPO on uploaded pairs trains with its own metrics chart; rating side-by-side answers in the Chat tab makes a
preference dataset that the Data tab offers and reads as pairs."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests.ui.browser import App, open_tab, set_number, shot
from workbench import ratings
from workbench.runs.queue import RunQueue

pytestmark = pytest.mark.slow


def pick(page, elem_id: str, option: str | re.Pattern) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option).first.click()


def pairs_file(tmp_path):
    rows = [
        {"prompt": f"Question {i}: what colour is a clear daytime sky?", "chosen": "Blue.",
         "rejected": "I will not tell you, stop asking me questions."}
        for i in range(16)
    ]  # fmt: skip
    path = tmp_path / "sky-pairs.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def test_dpo_from_the_form_then_ratings_become_a_dataset(browser, tmp_path, monkeypatch):
    home = tmp_path / "home"
    app = App(home).start()
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app.url)

        # Conversations are not pairs: DPO is refused at Start, naming the fields it needs; nothing is queued.
        pick(page, "data-sample", "sample · identity.json")
        expect(page.locator("#data-summary")).to_contain_text("Trains with", timeout=60_000)
        open_tab(page, "Train")
        pick(page, "train-stage", "DPO")
        expect(page.locator("#train-stage-info")).to_contain_text("preference pairs")
        assert page.locator("#field-stage-dpo-beta").is_visible()
        assert not page.locator("#field-stage-kto-desirable_weight").is_visible()
        errors = page.locator("#train-errors")
        expect(errors).to_contain_text("The dataset holds conversations; DPO needs preference pairs", timeout=30_000)
        shot(page, "dpo-train-mismatch")
        page.locator("#train-start").click()
        expect(errors).to_contain_text("prompt, chosen and rejected", timeout=30_000)
        expect(errors).to_contain_text("identity.json")
        assert RunQueue().list() == []

        # Pairs: the Data tab says what they are and which stages take them; DPO trains on them.
        open_tab(page, "Data")
        page.locator("#data-upload input[type=file]").set_input_files(str(pairs_file(tmp_path)))
        summary = page.locator("#data-summary")
        expect(summary).to_contain_text("preference pairs", timeout=60_000)
        expect(summary).to_contain_text("DPO")
        expect(page.locator("#data-preview")).to_contain_text("I will not tell you")
        open_tab(page, "Train")
        set_number(page, "field-train-max_steps", "3")
        set_number(page, "field-train-learning_rate", "0.001")
        set_number(page, "field-data-cutoff_len", "64")
        page.get_by_text("Advanced").click()
        set_number(page, "field-train-threads", "1")
        expect(page.locator("#train-stage-info")).to_contain_text("DPO")
        expect(errors).not_to_contain_text("The dataset holds")
        shot(page, "dpo-train")
        page.locator("#train-start").click()
        page.locator("#runs-progress").get_by_text("finished").wait_for(timeout=300_000)
        chart = page.locator("#runs-stage-metrics")
        expect(chart).to_be_visible()
        expect(chart).to_contain_text("DPO metrics")
        chart.locator("canvas, svg").first.wait_for(timeout=30_000)
        expect(page.locator("#runs-table")).to_contain_text("dpo")
        shot(page, "dpo-runs")
        (job,) = RunQueue().list()
        assert {"rewards/margins", "rewards/accuracies"} <= set(job.files.read_metrics()[0])

        # Side by side with the DPO adapter, sampling so the two replies differ; prefer the tuned one.
        open_tab(page, "Chat")
        page.get_by_role("button", name="↻ runs").first.click()
        pick(page, "chat-adapter", re.compile(job.id))
        page.locator("#chat-side-by-side input").check()
        page.get_by_text("Sampling").click()
        set_number(page, "chat-temperature", "1.2")
        set_number(page, "chat-max-new", "24")
        page.locator("#chat-input textarea").fill("What colour is the sky?")
        page.locator("#chat-send").click()
        expect(page.locator("#chat-status")).to_contain_text("Done in", timeout=300_000)
        page.locator("#chat-prefer-tuned").click()
        expect(page.locator("#chat-rating-status")).to_contain_text("1", timeout=30_000)
        expect(page.locator("#chat-rating-status")).to_contain_text("Saved")
        shot(page, "chat-rating")
        (row,) = [json.loads(line) for line in ratings.ratings_path().read_text().splitlines()]
        assert row["prompt"] == [{"role": "user", "content": "What colour is the sky?"}]
        assert row["chosen"][0]["content"] != row["rejected"][0]["content"]
        assert row["run"] == job.id

        # The Data tab offers the ratings and reads them as preference pairs.
        open_tab(page, "Data")
        pick(page, "data-sample", re.compile(ratings.RATINGS_FILE))
        expect(summary).to_contain_text(ratings.RATINGS_FILE, timeout=60_000)
        expect(summary).to_contain_text("preference pairs")
        expect(summary).to_contain_text("1")
        expect(page.locator("#data-preview")).to_contain_text("What colour is the sky?", timeout=30_000)
        shot(page, "ratings-dataset")
    finally:
        app.stop()
