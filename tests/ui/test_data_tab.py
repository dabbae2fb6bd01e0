"""The Data tab: the first rows at once, the count once the helper process has read every row; big and bad
uploads through the real page refused clearly while the UI process's memory stays bounded."""

from __future__ import annotations

import json
import time

from playwright.sync_api import expect

from tests.data.bad_uploads import BAD_UPLOADS, GOOD
from tests.ui.browser import App
from workbench import home
from workbench.access import SAMPLES
from workbench.ui import background, data_tab

# How far the UI process's peak resident memory may rise above what it held before the uploads. Reading the
# first rows costs at most the 16 MB read (data/head.py), decoded and parsed: ~50 MB measured for a 200 MB
# one-row file; reading such a file whole, as the Data tab did before, cost the UI process ~2 GB.
UI_GROWTH_BOUND_MB = 150


def test_the_count_follows_the_first_rows():
    path = home.collected_dir() / "data.json"  # a file the workbench owns: the Data tab reads no other
    path.write_text(json.dumps([GOOD] * 20 + [{"instruction": "Say hi", "output": " "}]))
    steps = data_tab.inspect_steps({"path": str(path)}, "smollm2-135m-instruct", 256, False)
    try:
        shown = next(steps)
        assert "first 8 rows shown, counting the rest" in shown["summary"]
        assert not shown["error"] and len(shown["table"]) == 8
        shown = next(steps)  # the helper process has read the whole file
        assert shown["error"] == "**Cannot use this file.** data.json, row 21, field 'output': is empty"
        path.write_text(json.dumps([GOOD] * 20))
        steps = data_tab.inspect_steps({"path": str(path)}, "smollm2-135m-instruct", 256, False)
        next(steps)
        shown = next(steps)
        assert "**20** rows" in shown["summary"] and not shown["error"]
    finally:
        steps.close()
        background.shutdown()


def _memory_mb(pid: int) -> tuple[float, float]:
    """The process's resident memory now and its peak so far (the kernel's VmHWM: a sampling thread could miss
    a short spike, and psutil does not expose it)."""
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _upload(page, url: str, path) -> None:
    page.goto(url)  # a fresh page each time: no error left from the file before, an empty upload field
    page.locator("#data-upload input[type=file]").set_input_files(str(path))


def test_big_and_bad_uploads_leave_the_ui_process_small(browser, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))  # Gradio keeps its copies of uploads there
    bad = {b.name: b for b in BAD_UPLOADS}
    # The million-row files take the helper ~20 s and are read by the data-layer tests.
    names = ["random-bytes.json", "deep-lists.json", "deep-objects.json", "nul-bytes.csv", "one-huge-string.json"]
    files = {name: bad[name].write(tmp_path) for name in [*names, "too-big.json", "two-million-objects.json"]}
    app = App(tmp_path / "home").start()
    try:
        page = browser.new_page()
        error = page.locator("#data-error")
        baseline = None
        for name in names:
            _upload(page, app.url, files[name])
            expect(error).to_contain_text(f"Cannot use this file. {name}", timeout=60_000)
            for word in bad[name].words:
                expect(error).to_contain_text(word)
            if baseline is None:  # the upload and preview paths have run once
                baseline, _ = _memory_mb(app.proc.pid)

        # Over the size limit: the browser refuses it, naming it, before sending a byte (Gradio's max_file_size).
        _upload(page, app.url, files["too-big.json"])
        toast = page.get_by_test_id("toast-body")
        expect(toast).to_contain_text("too-big.json")
        expect(toast).to_contain_text(bad["too-big.json"].page_words[0])

        # 2M rows on one line: the first rows show at once; the helper process finds the bad last one.
        started = time.time()
        _upload(page, app.url, files["two-million-objects.json"])
        expect(page.locator("#data-summary")).to_contain_text("first 8 rows shown, counting the rest", timeout=60_000)
        expect(page.locator("#data-preview")).to_contain_text(GOOD["output"])
        first_rows = time.time() - started
        expect(error).to_contain_text("two-million-objects.json, row 2000000, field 'output'", timeout=120_000)
        whole = time.time() - started

        assert app.proc.poll() is None
        now, peak = _memory_mb(app.proc.pid)
        print(f"UI process: {baseline:.0f} MB before the uploads, peak {peak:.0f} MB, {now:.0f} MB after; 2M rows: "
              f"first rows in {first_rows:.1f} s, the bad last row found in {whole:.1f} s")  # fmt: skip
        assert peak - baseline < UI_GROWTH_BOUND_MB, f"peak {peak:.0f} MB, {baseline:.0f} MB before the uploads"
    finally:
        app.stop()
        for path in files.values():
            path.unlink(missing_ok=True)


def test_placeholders_and_the_system_prompt_reach_the_preview_and_the_example():
    identity = {"path": str(SAMPLES / "identity.json")}
    steps = list(data_tab.inspect_steps(identity, "smollm2-135m-instruct", 96, False))
    labels = [box.get("label") for box in steps[0]["fills"] if box.get("visible")]
    assert labels == ["{{name}}", "{{author}}"] and steps[0]["fill_names"]["names"] == ["name", "author"]
    assert steps[-1]["stats"]["placeholders"] == ["name", "author"]

    boxes = steps[0]["fill_names"]
    filled, _ = data_tab.use_fill(identity, boxes, " Zorblax ", "")
    assert filled == {**identity, "fill": {"name": "Zorblax"}}  # an empty box gives no value
    filled, boxes = data_tab.use_fill(identity, boxes, "Zorblax", "Quillon Labs")
    try:
        system = "You are a shop's helper."
        steps = list(data_tab.inspect_steps(filled, "smollm2-135m-instruct", 96, False, system, boxes))
    finally:
        background.shutdown()
    assert "I am Zorblax, an AI assistant developed by Quillon Labs." in steps[0]["table"]["assistant"][2]
    assert "fills" not in steps[0]  # the boxes show these placeholders already: what is typed in them stays
    # The same file again without values (uploaded anew): the boxes are emptied, as the values are gone.
    again = next(data_tab.inspect_steps(identity, "smollm2-135m-instruct", 96, False, None, boxes))
    assert [box["value"] for box in again["fills"][:2]] == ["", ""]
    example = "".join(text for text, _ in steps[-1]["example"])
    assert example.startswith("<|im_start|>system\nYou are a shop's helper.<|im_end|>")
    assert "Hello! I am Zorblax, an AI assistant developed by Quillon Labs." in example and "{{" not in example


def test_the_columns_form_gives_the_dataset_its_columns():
    dataset = {"path": "/owned/faq.csv", "format": "alpaca"}
    fields = ["Kommentar", "input", "Kunde fragt", "Wir sagen"]
    spec, error = data_tab.use_columns(dataset, fields, "", "", "prompt", "response")
    # `input` is alpaca's second part of the user turn by default: left unused, it is switched off.
    assert spec == {
        "path": "/owned/faq.csv",
        "columns": {"prompt": "Kunde fragt", "response": "Wir sagen", "query": ""},
    }
    assert not error
    spec, error = data_tab.use_columns(dataset, fields, "prompt", "", "prompt", "response")
    assert error.startswith("**Two fields are the user turn: Kommentar and Kunde fragt.**")
