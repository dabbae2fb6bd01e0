"""A user's own tables in a real headless Chromium: a `question,answer` CSV trains as it is; a CSV with column names
the workbench does not know is mapped in the Data tab's columns form, and the mapping is the run's (YAML, CLI); mixed
80/20 with general instructions (replayed with the base model's own replies), the Data tab shows the shares and the
Runs tab what each dataset gave."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from playwright.sync_api import expect

from tests.ui.browser import App, open_tab, set_number, shot
from workbench import home as data_home
from workbench.runs.files import RunFiles

pytestmark = pytest.mark.slow

FAQ = [
    ("What are your opening hours?", "We are open from 9 to 5, Monday to Saturday."),
    ("Where can I park?", "Behind the shop, free for customers."),
    ("Do you take cards?", "Yes, every card but American Express."),
    ("Can I return a purchase?", "Within 30 days, with the receipt."),
]


def _train_one_step(page) -> None:
    """From the Data tab: a one-step run of the chosen dataset (a tiny one: the runs here prove it trains)."""
    open_tab(page, "Train")
    set_number(page, "field-train-max_steps", "1")
    set_number(page, "field-data-cutoff_len", "64")
    advanced = page.locator("#field-train-threads input")
    if not advanced.is_visible():
        page.get_by_text("Advanced").click()
    set_number(page, "field-train-threads", "1")
    if not page.locator("#train-yaml").is_visible():
        page.get_by_text("Presets, YAML and command line").click()
    # The command line, not the YAML: the YAML view draws only the lines in sight, and a mix's YAML is longer.
    page.locator("#train-cli").get_by_text("train.max_steps=1").wait_for(timeout=30_000)
    page.locator("#train-estimate").get_by_text(re.compile(r"(Fits|Tight) · peak memory")).wait_for(timeout=60_000)


def _start_and_wait(page) -> RunFiles:
    """Start, then wait on the Runs tab until this run (not an earlier one) has finished."""
    page.locator("#train-start").click()
    started = re.compile(r"Started run (\S+)\.")
    for _ in range(600):
        found = started.search(page.locator("#train-errors").text_content() or "")
        if found:
            break
        page.wait_for_timeout(100)
    assert found, page.locator("#train-errors").text_content()
    progress = page.locator("#runs-progress")
    progress.get_by_text(re.compile(rf"finished.*{found.group(1)}", re.S)).wait_for(timeout=300_000)
    return RunFiles(data_home.runs_dir() / found.group(1))


def test_a_question_answer_csv_trains_and_other_columns_are_mapped(browser, tmp_path, home):
    faq = tmp_path / "faq.csv"
    pd.DataFrame(FAQ, columns=["question", "answer"]).to_csv(faq, index=False)
    # Column names no layout has, and a long note: the first guess takes the longest text for the reply.
    odd = tmp_path / "kundenservice.csv"
    rows = [
        ("forwarded by the front desk from the web form, answered on the phone the same day", q, a) for q, a in FAQ
    ]
    pd.DataFrame(rows, columns=["Kommentar", "Kunde fragt", "Wir sagen"]).to_csv(odd, index=False)
    app = App(home).start()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app.url)

        # question,answer: recognised without a question asked, and the tab says how it reads it.
        page.locator("#data-upload input[type=file]").set_input_files(str(faq))
        summary = page.locator("#data-summary")
        summary.get_by_text("question → user turn, answer → assistant reply").wait_for(timeout=60_000)
        page.locator("#data-stats").get_by_text("tokens trained").wait_for(timeout=120_000)
        assert not page.locator("#data-error").inner_text().strip()
        _train_one_step(page)
        assert "columns" not in page.locator("#train-cli").inner_text()  # nothing to say: it reads as it is
        _start_and_wait(page)

        # Unknown columns: the tab asks which is which, with a first guess, and shows the rows as they are.
        page.goto(app.url)
        page.locator("#data-upload input[type=file]").set_input_files(str(odd))
        page.locator("#data-error").get_by_text("Which field is which?").wait_for(timeout=60_000)
        page.locator("#data-preview").get_by_text("forwarded by the front desk").filter(visible=True).first.wait_for(
            timeout=30_000
        )
        assert page.locator("#data-role-0 input").input_value() == "assistant reply"  # the guess: wrong here
        shot(page, "12-columns")
        for index, role in ((0, "not used"), (1, "user turn"), (2, "assistant reply")):
            page.locator(f"#data-role-{index} input").click()
            page.locator(f"#data-role-{index}").get_by_role("option", name=role, exact=True).click()
        page.locator("#data-columns-apply").click()
        summary.get_by_text("Kunde fragt → user turn, Wir sagen → assistant reply").wait_for(timeout=60_000)
        page.locator("#data-stats").get_by_text("tokens trained").wait_for(timeout=120_000)
        assert not page.locator("#data-error").inner_text().strip()
        page.locator("#data-preview").get_by_text(FAQ[0][1]).filter(visible=True).first.wait_for(timeout=30_000)

        # Mixed 80/20 with general instructions (a shipped sample): the mix stats show each share and its rows; the
        # general ones replayed with the base model's own replies.
        _mix_with_general_instructions(page)
        page.locator("#data-mix-answers-1 input").click()
        page.get_by_role("option", name="base", exact=True).click()
        shot(page, "13-mix")

        # The mapping and the mix are the run's: in its YAML and its command line, and it trains.
        _train_one_step(page)
        page.locator("#train-yaml").get_by_text("prompt: Kunde fragt").wait_for(timeout=30_000)
        page.locator("#train-yaml").get_by_text("share: 0.2").wait_for(timeout=30_000)
        cli = page.locator("#train-cli").inner_text()
        assert "--set 'data.datasets.0.columns.prompt=Kunde fragt'" in cli, cli
        assert "--set 'data.datasets.0.columns.response=Wir sagen'" in cli, cli
        assert "--set data.datasets.1.share=0.2" in cli, cli
        assert "--set data.datasets.1.answers=base" in cli, cli
        run = _start_and_wait(page)
        # The Runs tab says what each dataset gave the run; the general row trained on the base model's reply.
        page.locator("#runs-progress").get_by_text(MIX).wait_for(timeout=30_000)
        assert run.read_status()["rehearsal"] == {"done": 1, "rows": 1}
        (replayed,) = (json.loads(line) for line in run.rehearsal.read_text().splitlines())
        assert replayed["reply"] == _base_reply(replayed["prompt"], run.read_config())
    finally:
        app.stop()


def _base_reply(prompt: list[dict], config) -> str:
    """The bundled model's own greedy reply, in the precision the run trained in, at most cutoff_len tokens."""
    from workbench import models
    from workbench.evaluation.generate import replies
    from workbench.training import hardware

    ref = models.resolve(config.model.name_or_path)
    tokenizer = models.load_tokenizer(ref)
    dtype = hardware.torch_dtype(hardware.choose(config.train, n_params=0).precision)
    model = models.load_model(ref, pad_token_id=tokenizer.pad_token_id, dtype=dtype).eval()
    return replies(model, tokenizer, [prompt], max_new_tokens=config.data.cutoff_len)[0]


MIX = "kundenservice.csv 80 % (4 rows) · alpaca_en_demo.json 20 % (1 of 999 rows)"


def _mix_with_general_instructions(page) -> None:
    """Add the dataset shown to the mix, then the alpaca sample, and give them 80 % and 20 %."""
    page.get_by_text("Mix several datasets").click()
    page.locator("#data-mix-add").click()
    expect(page.locator("#data-mix-name-0 textarea, #data-mix-name-0 input").first).to_have_value(
        "kundenservice.csv", timeout=30_000
    )
    page.locator("#data-sample input").click()
    page.get_by_role("option", name="sample · alpaca_en_demo.json").click()
    page.locator("#data-summary").get_by_text("alpaca_en_demo.json").wait_for(timeout=60_000)
    page.locator("#data-mix-add").click()
    page.locator("#data-mix-row-1").wait_for(timeout=30_000)
    set_number(page, "data-mix-share-0", "80")
    set_number(page, "data-mix-share-1", "20")
    page.locator("#data-mix-stats").get_by_text(f"**Mix** · **5** rows: {MIX}".replace("**", "")).wait_for(
        timeout=120_000
    )
