"""Faults injected into a running workbench, each a few times, and what they cost: python bench/faults.py

Each fault is a function that gets the shared `Context` (the app as a process, a browser page on it, a scratch
folder) and how many times to inject it, and returns a `Row`. The table has a column for each measure any row
fills: runs lost, rows or files lost, whether every error was clear (named the file, and the row or line where
one is at fault), the UI process's peak resident memory, the time until the person is told (or it recovered).

Bad uploads go through the page as a person's would (Playwright, Debian's Chromium): each fault gets a fresh
copy of its file per time (Gradio would not fire a change for the same file twice), and the UI process's peak
is reset before it (/proc/PID/clear_refs), so the figure is that fault's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.lifecycle_faults import LIFECYCLE_FAULTS  # noqa: E402
from tests.conftest import kill_workers  # noqa: E402
from tests.data.bad_uploads import BAD_UPLOADS, BadUpload  # noqa: E402
from tests.ui.browser import BROWSER_ARGS, CHROMIUM, App  # noqa: E402


@dataclass
class Row:
    """One fault's figures; None where a measure does not apply to it."""

    fault: str
    times: int
    runs_lost: int | None = None
    rows_lost: int | None = None  # rows or files
    clear_error: bool | None = None  # every time
    ui_peak_mb: float | None = None  # the highest of its times
    ui_rise_mb: float | None = None  # the most the peak rose over the memory held just before a time
    seconds_to_report: float | None = None  # median: until the person is told, or until it recovered
    note: str | None = None


HEADERS = {
    "fault": "fault",
    "times": "times",
    "runs_lost": "runs lost",
    "rows_lost": "rows/files lost",
    "clear_error": "clear error",
    "ui_peak_mb": "UI process peak memory (MB)",
    "ui_rise_mb": "its rise over the time before (MB)",
    "seconds_to_report": "time to report or recover (median, s)",
    "note": "",
}


@dataclass
class Context:
    """What the faults share: a scratch folder, the app as a process and a browser page on its Data tab."""

    folder: Path
    app: App
    page: object  # playwright.sync_api.Page
    wait_s: float  # how long a fault may take to be reported

    def ui_memory_mb(self) -> tuple[float, float]:
        """The UI process's resident memory now and its peak since the last reset (the kernel's VmHWM)."""
        with open(f"/proc/{self.app.proc.pid}/status") as status:
            values = dict(line.split(":", 1) for line in status)
        return int(values["VmRSS"].split()[0]) / 1024, int(values["VmHWM"].split()[0]) / 1024

    def reset_ui_peak(self) -> None:
        with open(f"/proc/{self.app.proc.pid}/clear_refs", "w") as refs:
            refs.write("5")  # "reset the peak resident set size", Documentation/filesystems/proc.rst


def bad_upload(bad: BadUpload) -> Callable[[Context, int], Row]:
    """The fault of uploading `bad` in the Data tab: is the error clear, how long until it shows, at what cost."""

    def inject(ctx: Context, times: int) -> Row:
        page, clear_every_time, waits, peaks, rises = ctx.page, True, [], [], []
        for attempt in range(times):
            page.goto(ctx.app.url)  # a fresh page: no error left from the time before
            folder = ctx.folder / f"{bad.name}-{attempt}"
            folder.mkdir()
            path = bad.write(folder)
            with path.open("ab") as out:  # a different file each time, read the same way
                out.write(b"\n" * (attempt + 1))
            before, _ = ctx.ui_memory_mb()
            ctx.reset_ui_peak()
            started = time.time()
            page.locator("#data-upload input[type=file]").set_input_files(str(path))
            text = _told(page, bad.name, ctx.wait_s)
            waits.append(time.time() - started)
            peaks.append(ctx.ui_memory_mb()[1])
            rises.append(peaks[-1] - before)
            row_named = f"row {bad.row}" if bad.row is not None else ""
            words = bad.page_words or bad.words
            clear_every_time &= bool(text) and row_named in text and all(word in text for word in words)
            path.unlink()
        return Row(bad.name, times, clear_error=clear_every_time, ui_peak_mb=max(peaks), ui_rise_mb=max(rises),
                   seconds_to_report=statistics.median(waits))  # fmt: skip

    inject.__name__ = f"bad_upload_{bad.name}"
    return inject


def _told(page, name: str, wait_s: float) -> str:
    """What the page says about the file `name` within `wait_s`: the Data tab's error, or Gradio's own toast (a
    file over the size limit never leaves the browser); "" if nothing names it."""
    deadline = time.time() + wait_s
    while time.time() < deadline:
        text = " ".join(
            [page.locator("#data-error").inner_text(), *page.get_by_test_id("toast-body").all_inner_texts()]
        )
        if name in text:
            return text
        time.sleep(0.1)
    return ""


def lifecycle(fault: Callable[[Context, int], dict]) -> Callable[[Context, int], Row]:
    def inject(ctx: Context, times: int) -> Row:
        return Row(**fault(ctx, times))

    inject.__name__ = fault.__name__
    return inject


FAULTS: list[Callable[[Context, int], Row]] = [bad_upload(bad) for bad in BAD_UPLOADS]
FAULTS += [lifecycle(fault) for fault in LIFECYCLE_FAULTS]


def markdown(rows: list[Row]) -> str:
    """The rows as a markdown table, with the columns that some row fills."""
    shown = [f.name for f in fields(Row) if any(getattr(r, f.name) is not None for r in rows)]

    def cell(value) -> str:
        if value is None:
            return "–"
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "yes" if value else "**no**"
        return f"{value:,.1f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(HEADERS[name] for name in shown) + " |"]
    lines.append("|" + "|".join("---" if name == "fault" else "---:" for name in shown) + "|")
    lines += ["| " + " | ".join(cell(getattr(row, name)) for name in shown) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=3, help="how many times to inject each fault")
    parser.add_argument("--only", default="", help="run the faults whose name holds this text")
    parser.add_argument("--wait", type=float, default=120, help="seconds a fault may take to be reported")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    faults = [f for f in FAULTS if args.only in f.__name__]
    with tempfile.TemporaryDirectory(prefix="workbench-faults-") as scratch, sync_playwright() as playwright:
        folder = Path(scratch)
        os.environ["GRADIO_TEMP_DIR"] = str(folder / "gradio")  # Gradio's copies of uploads, not in /tmp/gradio
        os.environ.setdefault("WORKBENCH_MODELS", str(REPO / ".home" / "models"))  # converted once, as in tests
        app = App(folder / "home").start()
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
            page = browser.new_page()
            page.goto(app.url)
            ctx = Context(folder, app, page, args.wait)
            before, _ = ctx.ui_memory_mb()
            rows = []
            for fault in faults:
                rows.append(fault(ctx, args.times))
                print(f"{fault.__name__}: {rows[-1]}", file=sys.stderr)
        finally:
            app.stop()
            kill_workers(app.home)  # the warm launcher outlives a UI stopped while it still imports
    print(f"UI process resident memory before the faults: {before:.0f} MB\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
