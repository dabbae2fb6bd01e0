"""Downloads lie in a private folder of Gradio's cache, each in its own, and old ones are removed."""

from __future__ import annotations

import os
import stat
import time

from workbench.ui import downloads


def test_each_download_gets_a_private_folder_and_old_ones_go(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    first = downloads.new_path("run-adapter.zip")
    first.write_bytes(b"zip")
    second = downloads.new_path("run-adapter.zip")
    assert first.parent != second.parent and first.parent.parent == tmp_path / "gradio" / downloads.FOLDER
    assert stat.S_IMODE(os.stat(first.parent).st_mode) == 0o700

    old = time.time() - downloads.MAX_AGE_SECONDS - 60
    os.utime(first.parent, (old, old))
    third = downloads.new_path("run-merged.zip")
    assert not first.parent.exists()
    assert second.parent.exists() and third.parent.exists()


def test_a_stopping_server_removes_its_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    made = downloads.new_path("run-merged.zip")
    made.write_bytes(b"zip")
    downloads.remove_own()
    assert not made.parent.exists()
