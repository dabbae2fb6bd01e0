import hashlib
import json
import multiprocessing
import os

import pytest

from workbench import home
from workbench.config import DatasetSpec
from workbench.data import freeze_spec, load_conversations, store_dataset
from workbench.data import store as store_module

ROWS = [{"instruction": f"Say {n}", "input": "", "output": str(n)} for n in range(50)]


@pytest.fixture
def data_file(write_json):
    return write_json(ROWS, "mine.json")


def _entries():
    root = home.datasets_dir()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_store_copies_under_the_content_hash(data_file):
    stored = store_dataset(data_file)
    digest = hashlib.sha256(data_file.read_bytes()).hexdigest()
    assert stored.sha256 == digest
    assert stored.path == home.datasets_dir() / digest / "mine.json"
    assert stored.path.read_bytes() == data_file.read_bytes()
    assert _entries() == [digest, f"{digest}/mine.json"]


def test_storing_the_same_file_again_reuses_it(data_file):
    first = store_dataset(data_file)
    mtime = first.path.stat().st_mtime_ns
    second = store_dataset(data_file)
    assert second == first and first.path.stat().st_mtime_ns == mtime
    assert len(_entries()) == 2


def test_same_bytes_under_another_name_share_the_hash_folder(data_file, tmp_path):
    other = tmp_path / "copy.json"
    other.write_bytes(data_file.read_bytes())
    a, b = store_dataset(data_file), store_dataset(other)
    assert a.sha256 == b.sha256 and a.path.parent == b.path.parent
    assert sorted(p.name for p in a.path.parent.iterdir()) == ["copy.json", "mine.json"]


def test_changed_content_is_a_new_entry(data_file):
    first = store_dataset(data_file)
    data_file.write_text(json.dumps(ROWS[:10]), encoding="utf-8")
    second = store_dataset(data_file)
    assert first.sha256 != second.sha256
    assert first.path.is_file() and second.path.is_file()


def test_a_failure_while_copying_leaves_nothing_behind(data_file, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(store_module.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store_dataset(data_file)
    # At most the empty hash folder remains: no temporary file, no partial copy.
    assert [p for p in home.datasets_dir().rglob("*") if p.is_file()] == []


def test_a_missing_source_leaves_nothing_behind(tmp_path):
    from workbench.errors import DataError

    with pytest.raises(DataError, match="no such file"):
        store_dataset(tmp_path / "gone.json")
    assert _entries() == []


def _store_in_child(path, home_dir, barrier, queue):
    os.environ["WORKBENCH_HOME"] = home_dir
    barrier.wait(timeout=60)  # start copying together, once every child has imported
    stored = store_dataset(path)
    queue.put((str(stored.path), stored.sha256))


def test_processes_storing_the_same_file_at_once_leave_one_whole_copy(tmp_path, workbench_home):
    path = tmp_path / "big.json"
    path.write_text(json.dumps(ROWS * 2000), encoding="utf-8")  # a few MB, so copies overlap in time
    context = multiprocessing.get_context("spawn")
    queue, barrier = context.Queue(), context.Barrier(4)
    children = [
        context.Process(target=_store_in_child, args=(path, str(workbench_home), barrier, queue)) for _ in range(4)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    results = {queue.get(timeout=5) for _ in children}
    assert len(results) == 1
    stored_path, digest = results.pop()
    assert hashlib.sha256(open(stored_path, "rb").read()).hexdigest() == digest
    assert _entries() == [digest, f"{digest}/big.json"]


def test_freeze_spec_makes_a_dataset_info_entry_self_contained(demo_dir):
    spec = DatasetSpec(path=str(demo_dir), name="kto_en_demo", max_samples=20)
    frozen = freeze_spec(spec)
    digest = hashlib.sha256((demo_dir / "kto_en_demo.json").read_bytes()).hexdigest()
    assert frozen.path == str(home.datasets_dir() / digest / "kto_en_demo.json")
    assert frozen.name is None and frozen.format == "sharegpt" and frozen.max_samples == 20
    assert frozen.columns == {"messages": "messages", "kto_tag": "label"}
    assert frozen.tags == {
        "role_tag": "role",
        "content_tag": "content",
        "user_tag": "user",
        "assistant_tag": "assistant",
    }
    assert load_conversations(frozen).conversations == load_conversations(spec).conversations


def test_freeze_spec_of_a_plain_file_records_the_detected_format(data_file):
    frozen = freeze_spec(DatasetSpec(path=str(data_file)))
    assert frozen.format == "alpaca" and frozen.path.endswith("/mine.json")
    assert len(load_conversations(frozen).conversations) == len(ROWS)
