"""The Data tab: the first rows at once, the count once the helper process has read every row; big and bad
uploads through the real page refused clearly while the UI process's memory stays bounded."""

from __future__ import annotations

import json
import time

from playwright.sync_api import expect

from tests.data.bad_uploads import BAD_UPLOADS, GOOD
from tests.ui.browser import App
from workbench import home
from workbench.ui import background, data_tab

# How far the UI process's peak resident memory may rise above what it held before the uploads. Reading the
# first rows costs at most the 16 MB read (data/head.py), decoded and parsed: ~50 MB measured for a 200 MB
# one-row file; reading such a file whole, as the Data tab did before, cost the UI process ~2 GB.
UI_GROWTH_BOUND_MB = 150


def test_the_count_follows_the_first_rows():
    path = home.collected_dir() / "data.json"  # a file the workbench owns: the Data tab reads no other
    path.write_text(json.dumps([GOOD] * 20 + [{"instruction": "Say hi", "output": " "}]))
    steps = data_tab.inspect(str(path), "smollm2-135m-instruct", 256, False)
    try:
        _, summary, error, table, *_ = next(steps)
        assert "first 8 rows shown, counting the rest" in summary and not error and len(table) == 8
        _, summary, error, *_ = next(steps)  # the helper process has read the whole file
        assert error == "**Cannot use this file.** data.json, row 21, field 'output': is empty"
        path.write_text(json.dumps([GOOD] * 20))
        steps = data_tab.inspect(str(path), "smollm2-135m-instruct", 256, False)
        next(steps)
        _, summary, error, *_ = next(steps)
        assert "**20** rows" in summary and not error
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
