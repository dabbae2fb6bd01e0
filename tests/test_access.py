"""Which dataset files a server reads for its user: its own folders only, and a refusal that tells nothing."""

from __future__ import annotations

import os

import pytest

from workbench import access, home, ratings
from workbench.access import REFUSED, AccessError, readable_dataset
from workbench.data.store import store_dataset


@pytest.fixture(autouse=True)
def uploads(tmp_path, monkeypatch):
    """Gradio's upload cache, where the page's uploads land."""
    folder = tmp_path / "gradio-uploads"
    folder.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


def write(path, text='[{"instruction": "hi", "output": "hello"}]'):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_workbenchs_own_datasets_are_readable(uploads, tmp_path):
    uploaded = write(uploads / "0123abcd" / "mine.json")
    sample = access.SAMPLES / "identity.json"
    collected = write(home.collected_dir() / ratings.RATINGS_FILE, "{}\n")
    stored = store_dataset(write(tmp_path / "elsewhere" / "kept.csv", "instruction,output\na,b\n")).path
    for path in (uploaded, sample, collected, stored):
        assert readable_dataset(str(path)) == path.resolve()


def test_every_other_path_gets_the_same_refusal(uploads, tmp_path):
    outside = write(tmp_path / "secret.json")
    link = uploads / "abcd" / "link.json"
    link.parent.mkdir()
    link.symlink_to(outside)  # inside the uploads, pointing out
    info = write(uploads / "ef01" / "dataset_info.json", '{"x": {"file_name": "/etc/passwd"}}')
    candidates = [
        outside,  # a readable file elsewhere
        tmp_path / "missing.json",
        tmp_path,  # a folder
        uploads / "ef01",  # a folder inside the uploads
        uploads / "nope" / "missing.json",
        link,
        info,  # names other files, anywhere
        write(uploads / "0a" / "notes.xml", "text"),  # not a dataset format
        "/etc/passwd",
        uploads / "0123" / ".." / ".." / "secret.json",  # climbs out
        "",
        "bad\0name.json",
    ]
    for path in candidates:
        with pytest.raises(AccessError) as refused:
            readable_dataset(path)
        assert str(refused.value) == REFUSED, path


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_gets_the_same_refusal(uploads):
    locked = write(uploads / "0b" / "locked.json")
    locked.chmod(0)
    with pytest.raises(AccessError, match=REFUSED):
        readable_dataset(locked)
