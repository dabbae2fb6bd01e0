"""The Data tab's other sources and its mix, through the handlers the page calls: a LLaMA-Factory folder uploaded
as a zip, its entry chosen, raw text, a hub id refused offline, and a mix whose stats show the shares."""

from __future__ import annotations

import shutil
import zipfile

import pytest

from tests.data.test_sources import LLAMAFACTORY
from workbench import access, home
from workbench.access import SAMPLES
from workbench.ui import background, data_mix, data_sources, data_tab

MODEL = "smollm2-135m-instruct"


@pytest.fixture(autouse=True)
def uploads(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    folder = access.uploads_dir() / "0f"
    folder.mkdir(parents=True)
    yield folder
    background.shutdown()


def test_a_llamafactory_folder_uploaded_as_a_zip_loads_through_its_entry(uploads):
    upload = uploads / "llamafactory.zip"
    with zipfile.ZipFile(upload, "w") as out:
        for path in LLAMAFACTORY.iterdir():
            out.write(path, f"llamafactory/{path.name}")
    dataset, error = data_sources.uploaded(str(upload))
    assert not error and dataset["path"].startswith(str(home.datasets_dir()))

    # No entry chosen yet: the tab says to choose one, and the picker offers the local ones (not the hub entry).
    first = next(data_tab.inspect_steps(dataset, MODEL, 256, False))
    assert "choose a dataset name from dataset_info.json" in first["error"]
    entries, splits = data_sources.pickers(dataset)
    assert entries["choices"] == ["identity", "dpo_en_demo", "c4_demo"] and entries["visible"]
    assert not splits["visible"]
    assert data_sources.choose_entry(dataset, "alpaca_en") == {"__type__": "update"}  # a hub entry: not here

    chosen = data_sources.choose_entry(dataset, "identity")
    steps = list(data_tab.inspect_steps(chosen, MODEL, 256, False))
    assert "**llamafactory · identity** · conversations · format **alpaca** · **91** rows" in steps[-2]["summary"]
    assert steps[-1]["stats"]["rows"] == 91 and not steps[-1]["error"]
    pretraining = list(data_tab.inspect_steps(data_sources.choose_entry(dataset, "c4_demo"), MODEL, 64, False))
    assert "raw text" in pretraining[0]["summary"] and "Continued pre-training" in pretraining[0]["summary"]
    assert "**3** documents" in pretraining[-1]["stats_md"] and "every one of the" in pretraining[-1]["stats_md"]


def test_a_zip_that_is_no_dataset_is_refused_and_the_choice_stays(uploads):
    upload = uploads / "notes.zip"
    with zipfile.ZipFile(upload, "w") as out:
        out.writestr("notes/readme.md", "hello")
    dataset, error = data_sources.uploaded(str(upload))
    assert dataset == {"__type__": "update"}  # the dataset chosen before stays chosen
    assert error.startswith("**Cannot use this zip.** notes.zip: it holds no dataset folder")


def test_a_hub_dataset_offline_is_refused_naming_it(uploads):
    dataset, error = data_sources.fetch_from_hub("tatsu-lab/alpaca", "", "train")
    assert dataset == {"__type__": "update"}
    assert "cannot fetch hf://tatsu-lab/alpaca: this machine is offline" in error
    assert not list(home.datasets_dir().iterdir())


def test_a_mix_shows_each_share_and_the_rows_it_gives(uploads):
    faq = uploads / "faq.csv"
    faq.write_text("question,answer\n" + "".join(f"Q{i}?,A{i}.\n" for i in range(4)), encoding="utf-8")
    mix, message = data_mix.add({"path": str(faq)}, [])
    mix, _ = data_mix.add({"path": str(SAMPLES / "alpaca_en_demo.json")}, mix)
    assert not message and len(mix) == 2
    assert data_mix.add({"path": str(faq)}, mix)[1] == "**This dataset is in the mix already.**"
    mix = data_mix._setter(0, "share")(mix, 80)
    mix = data_mix._setter(1, "share")(mix, 20)
    assert [spec["share"] for spec in mix] == [0.8, 0.2]
    steps = list(data_mix.inspect_steps(mix, MODEL, 256, False, None, "no_repeats", 42))
    text, stats = steps[-1]
    assert "**Mix** · **5** rows: faq.csv 80 % (4 rows) · alpaca_en_demo.json 20 % (1 of 999 rows)" in text, text
    assert stats["rows"] == 5 and stats["kind"] == "conversations"
    assert [part["rows"] for part in stats["mix"]] == [4, 1]
    # The Train tab reads the mix, and the shares that do not add up are said at once.
    assert data_mix.chosen({"path": str(faq)}, mix) == mix
    bad = data_mix._setter(1, "share")(mix, 30)
    (only,) = list(data_mix.inspect_steps(bad, MODEL, 256, False, None))
    assert only == ("**Cannot use this mix:** the datasets' shares add up to 1.1; they must add up to 1.", {})


def test_a_txt_upload_reads_as_raw_text(uploads):
    story = uploads / "story.txt"
    shutil.copy(LLAMAFACTORY / "README.md", story)
    steps = list(data_tab.inspect_steps({"path": str(story)}, MODEL, 64, False))
    assert "**story.txt** · raw text" in steps[0]["summary"] and not steps[-1]["error"]
    assert "documents" in steps[-1]["stats_md"] and steps[-1]["stats"]["kind"] == "text"
