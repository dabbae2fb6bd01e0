"""Datasets that are not one file: save_to_disk folders (a Dataset, or a DatasetDict's split), LLaMA-Factory data
folders, both brought through the page as a zip, and Hugging Face hub ids; each frozen into the store as one file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PRESETS, REPO, only_dataset
from workbench import access, home
from workbench.access import AccessError, readable_dataset
from workbench.config import DatasetSpec
from workbench.data import archive, hub
from workbench.data.loading import detect_kind, first_rows, load_for
from workbench.data.store import freeze_spec
from workbench.errors import DataError

LLAMAFACTORY = Path(__file__).parent / "files" / "llamafactory"
ROWS = [{"instruction": f"Question {i}?", "output": f"Answer {i}."} for i in range(10)]


@pytest.fixture(scope="module")
def saved_folders(tmp_path_factory):
    """A Dataset saved after a shuffle and a selection, and a DatasetDict with train and test splits."""
    from datasets import Dataset, DatasetDict

    root = tmp_path_factory.mktemp("saved")
    full = Dataset.from_list(ROWS)
    full.shuffle(seed=1).select(range(4)).save_to_disk(str(root / "picked"))
    DatasetDict({"train": full, "test": full.select(range(2))}).save_to_disk(str(root / "splits"))
    return root


def zip_folder(folder: Path, target: Path, inside: str | None = None) -> Path:
    with zipfile.ZipFile(target, "w") as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                name = path.relative_to(folder).as_posix()
                out.write(path, f"{inside}/{name}" if inside else name)
    return target


def test_a_saved_dataset_reads_as_datasets_reads_it(saved_folders):
    from datasets import load_from_disk

    spec = DatasetSpec(path=str(saved_folders / "picked"))
    expected = load_from_disk(str(saved_folders / "picked")).to_list()  # the selection and order it was saved with
    assert first_rows(spec, 2) == expected[:2]
    assert detect_kind(spec) == "conversations"
    loaded = load_for("conversations", spec)
    assert [c[0]["content"] for c in loaded.conversations] == [r["instruction"] for r in expected]
    assert loaded.rows == 4


def test_a_datasetdict_reads_its_split(saved_folders):
    splits = saved_folders / "splits"
    assert load_for("conversations", DatasetSpec(path=str(splits))).rows == 10  # train, by default
    assert load_for("conversations", DatasetSpec(path=str(splits), split="test")).rows == 2
    with pytest.raises(DataError, match=r"splits, field 'split': no split 'validation'; its splits: train, test"):
        load_for("conversations", DatasetSpec(path=str(splits), split="validation"))


def test_a_saved_split_freezes_into_one_parquet_file(saved_folders):
    spec = DatasetSpec(path=str(saved_folders / "splits"), split="test", share=0.5)
    frozen = freeze_spec(spec, load_for("conversations", spec))
    stored = Path(frozen.path)
    assert stored.is_relative_to(home.datasets_dir()) and stored.name == "splits-test.parquet"
    assert (frozen.split, frozen.share) == (None, 0.5)
    assert load_for("conversations", frozen).conversations == load_for("conversations", spec).conversations
    leftovers = [p.name for p in home.datasets_dir().iterdir() if p.name.startswith(".")]
    assert not leftovers


def test_a_zipped_saved_folder_is_unpacked_into_the_store_and_readable_from_the_page(saved_folders, tmp_path):
    upload = zip_folder(saved_folders / "splits", tmp_path / "my-data.zip", inside="splits")
    folder = archive.unpack(upload)
    assert folder.is_relative_to(home.datasets_dir()) and folder.name == "splits"
    assert readable_dataset(folder) == folder  # a dataset folder in the store: the page may read it
    assert load_for("conversations", DatasetSpec(path=str(folder), split="test")).rows == 2
    assert archive.unpack(upload) == folder  # the same zip again: the same folder, not a second copy
    with pytest.raises(AccessError):
        readable_dataset(saved_folders / "splits")  # the same folder outside the store is not the workbench's
    with pytest.raises(AccessError):
        readable_dataset(folder.parent.parent)  # nor the store itself


def test_a_llamafactory_folder_comes_as_a_zip_and_its_entries_load(tmp_path):
    folder = archive.unpack(zip_folder(LLAMAFACTORY, tmp_path / "llamafactory.zip"))
    assert readable_dataset(folder) == folder
    identity = load_for("conversations", DatasetSpec(path=str(folder), name="identity"))
    assert identity.path.is_relative_to(folder) and len(identity.conversations) == 91
    assert detect_kind(DatasetSpec(path=str(folder), name="dpo_en_demo")) == "pairs"
    assert load_for("text", DatasetSpec(path=str(folder), name="c4_demo")).examples[0].startswith("The workbench")
    with pytest.raises(DataError, match="'alpaca_en': cannot fetch hf://llamafactory/alpaca_en"):
        load_for("conversations", DatasetSpec(path=str(folder), name="alpaca_en"))


def test_an_entry_may_not_name_a_file_outside_its_folder(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (tmp_path / "secret.json").write_text(json.dumps(ROWS), encoding="utf-8")
    (folder / "dataset_info.json").write_text(json.dumps({"x": {"file_name": "../secret.json"}}), encoding="utf-8")
    with pytest.raises(DataError, match="'x' names '../secret.json', outside the folder of dataset_info.json"):
        load_for("conversations", DatasetSpec(path=str(folder), name="x"))


def _zip(path: Path, members: dict[str, bytes], links: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16  # a symbolic link
            out.writestr(info, "/etc/passwd")
    return path


INFO = json.dumps({"x": {"file_name": "x.json"}}).encode()


@pytest.mark.parametrize(
    "members, links, words",
    [
        ({"dataset_info.json": INFO, "../escape.json": b"[]"}, (), "'../escape.json', which may not be unpacked"),
        ({"dataset_info.json": INFO, "/abs.json": b"[]"}, (), "'/abs.json', which may not be unpacked"),
        ({"dataset_info.json": INFO}, ("x.json",), "'x.json', which may not be unpacked (a link"),
        ({"notes/readme.md": b"hello"}, (), "it holds no dataset folder"),
        ({"dataset_info.json": INFO, "x.json": b"[" + b" " * 3000 + b"]"}, (), "unpacks to more than the"),
    ],
    ids=["climbs-out", "absolute", "symlink", "no-dataset", "too-big"],
)
def test_unsafe_or_useless_zips_are_refused_and_leave_nothing(tmp_path, monkeypatch, members, links, words):
    monkeypatch.setenv("WORKBENCH_MAX_DATASET_MB", str(2000 / 1024 / 1024))  # 2,000 bytes
    upload = _zip(tmp_path / "upload.zip", members, links)
    with pytest.raises(DataError, match="upload.zip: ") as refused:
        archive.unpack(upload)
    assert words in str(refused.value)
    assert not list(home.datasets_dir().iterdir()), "a refused zip leaves nothing in the store"
    assert not (tmp_path / "escape.json").exists()


def test_a_zip_counts_for_upload_only_from_the_upload_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    (access.uploads_dir() / "0a").mkdir(parents=True)
    uploaded = _zip(access.uploads_dir() / "0a" / "d.zip", {"dataset_info.json": INFO})
    assert access.uploaded_archive(uploaded) == uploaded.resolve()
    for path in (_zip(tmp_path / "elsewhere.zip", {"dataset_info.json": INFO}), tmp_path / "missing.zip"):
        with pytest.raises(AccessError):
            access.uploaded_archive(path)


def test_a_hub_id_offline_is_refused_at_once_naming_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = DatasetSpec(path="hf://tatsu-lab/alpaca", subset="default", split="train")
    with pytest.raises(DataError) as refused:
        load_for("conversations", spec)
    message = str(refused.value)
    assert "cannot fetch hf://tatsu-lab/alpaca (subset default)" in message and "HF_HUB_OFFLINE is set" in message
    assert not list(home.datasets_dir().iterdir())
    with pytest.raises(DataError, match="'hf://../etc' is not a hub dataset id"):
        hub.repo_id("hf://../etc")


def test_an_unreachable_hub_is_refused_naming_the_id(monkeypatch):
    for name in hub.OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(DataError, match="cannot fetch hf://tatsu-lab/alpaca: the Hugging Face hub cannot be reached"):
        hub.fetch("hf://tatsu-lab/alpaca")
    assert not list(home.datasets_dir().iterdir())


def test_a_fetched_hub_dataset_is_stored_as_parquet_and_freezes_like_a_file(monkeypatch):
    from datasets import Dataset

    monkeypatch.setattr(hub, "offline_reason", lambda: None)
    monkeypatch.setattr(hub, "_look_up", lambda repo, shown: None)
    asked = []

    def download(repo, subset, split, cache):
        asked.append((repo, subset, split))
        assert cache.is_relative_to(home.datasets_dir())  # downloads go to a scratch folder in the store
        return Dataset.from_list(ROWS)

    monkeypatch.setattr(hub, "_download", download)
    spec = DatasetSpec(path="hf://org/faq", subset="en", split="train")
    loaded = load_for("conversations", spec)
    frozen = freeze_spec(spec, loaded)
    assert asked == [("org/faq", "en", "train")]
    assert Path(frozen.path).name == "org__faq-en-train.parquet" and frozen.path.startswith(str(home.datasets_dir()))
    assert len(load_for("conversations", frozen).conversations) == 10
    assert [p.name for p in home.datasets_dir().iterdir() if p.name.startswith(".")] == []  # no scratch left


def test_the_cli_refuses_a_hub_dataset_offline_and_writes_nothing(tmp_path):
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "workbench", "train", str(PRESETS / "sft-lora-identity.yaml"),
         "--set", only_dataset("hf://tatsu-lab/alpaca"), "--set", "data.datasets.0.split=train"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "data.datasets.0: cannot fetch hf://tatsu-lab/alpaca: this machine is offline" in result.stderr
    written = [p for p in (tmp_path / "home").rglob("*") if p.is_file() and not p.name.startswith("jobs.sqlite")]
    assert not written, written


def test_a_saved_folder_outside_the_store_is_what_the_cli_names(saved_folders, tmp_path):
    """A local user names folders directly (the CLI, a YAML file): the freeze stores its split."""
    from workbench.config import load_config
    from workbench.runs.submission import freeze

    local = shutil.copytree(saved_folders / "splits", tmp_path / "splits")
    config = load_config(PRESETS / "sft-lora-identity.yaml", [only_dataset(local), "data.datasets.0.split=test"])
    (frozen,) = freeze(config).data.datasets
    assert Path(frozen.path).name == "splits-test.parquet"
