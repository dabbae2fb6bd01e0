"""In a real browser: each method in the picker shows its own fields and its trainable-parameter count; a method
started from the form trains; the runs-compare view puts runs side by side."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import REPO
from tests.ui.browser import App, open_tab, set_number, shot
from workbench import methods
from workbench.methods.counting import count_for_method

pytestmark = pytest.mark.slow


def pick_method(page, title: str) -> None:
    page.locator("#train-method input").click()
    page.get_by_role("option", name=title, exact=True).click()


def test_each_method_shows_its_fields_and_count_and_one_trains(browser, tmp_path, model_ref):
    app = App(tmp_path / "home").start()
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app.url)
        page.locator("#data-upload input[type=file]").set_input_files(str(REPO / "presets/data/identity.json"))
        page.locator("#data-stats").get_by_text("tokens trained").wait_for(timeout=120_000)
        open_tab(page, "Train")

        for name in methods.names():
            spec = methods.get(name)
            pick_method(page, spec.title)
            page.locator("#train-method-info").get_by_text(spec.title, exact=False).first.wait_for(timeout=30_000)
            own = [f"field-method-{name}-{field}" for field in spec.params.model_fields if field != "name"]
            others = [
                f"field-method-{other}-{field}"
                for other in methods.names()
                if other != name
                for field in methods.get(other).params.model_fields
                if field != "name"
            ]
            for elem_id in own:
                assert page.locator(f"#{elem_id}").is_visible(), f"{name}: {elem_id} is hidden"
            assert not any(page.locator(f"#{elem_id}").is_visible() for elem_id in others), name
            trainable, total = count_for_method(spec.params(), model_ref.path)
            count = page.locator("#train-method-params")
            count.get_by_text(f"{trainable:,} trainable parameters of {total:,}").wait_for(timeout=60_000)
            if name == "freeze":
                shot(page, "methods-freeze")

        # Start one: bottleneck adapters, our own module, with a smaller bottleneck than the default.
        pick_method(page, methods.get("bottleneck").title)
        set_number(page, "field-method-bottleneck-size", "16")
        set_number(page, "field-train-max_steps", "3")
        set_number(page, "field-data-cutoff_len", "64")
        page.get_by_text("Advanced").click()
        set_number(page, "field-train-threads", "1")
        page.locator("#train-method-params").get_by_text(re.compile(r"trainable parameters")).wait_for()
        page.locator("#train-start").click()
        page.locator("#runs-progress").get_by_text("finished").wait_for(timeout=300_000)

        # Compare: the run's figures and loss curve appear in the compare view.
        page.locator("#runs-compare input").click()
        page.get_by_role("option", name=re.compile("bottleneck")).first.click()
        table = page.locator("#runs-compare-table")
        expect(table).to_contain_text("bottleneck", timeout=30_000)
        expect(table).to_contain_text("MiB", timeout=30_000)
        page.locator("#runs-compare-loss canvas, #runs-compare-loss svg").first.wait_for(timeout=30_000)
        shot(page, "methods-compare")

        # Export: merging is not offered for a nonlinear adapter, and the page says why.
        open_tab(page, "Export")
        page.get_by_role("button", name="↻ runs").last.click()
        page.locator("#export-run input").click()
        page.get_by_role("option", name=re.compile("bottleneck")).click()
        expect(page.locator("#export-message")).to_contain_text("cannot be merged", timeout=30_000)
        expect(page.locator("#export-merge")).to_be_disabled()
    finally:
        app.stop()
