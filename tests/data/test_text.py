"""Raw text for continued pre-training: .txt files and text columns read as documents, their first rows previewed,
and every token packed into cutoff-length blocks whose labels are their ids."""

from __future__ import annotations

import json

import pytest

from workbench.config import DatasetSpec
from workbench.data.head import read_head
from workbench.data.loading import detect_kind, load_for
from workbench.data.reading import read_records
from workbench.data.text import encode_texts, split_documents
from workbench.errors import DataError

STORY = "Once upon a time\nthere was a lamp.\n\n  \n\nIt shone.\r\n\r\nThe end.\n"


def test_blank_lines_separate_documents():
    assert split_documents(STORY) == ["Once upon a time\nthere was a lamp.", "It shone.", "The end."]
    assert split_documents("one line\nanother line\n") == ["one line\nanother line"]


def test_a_txt_file_reads_and_previews_as_documents(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text(STORY, encoding="utf-8")
    assert read_records(path) == [{"text": d} for d in split_documents(STORY)]
    head = read_head(path, 2)
    assert head.records == read_records(path)[:2] and head.total is None
    assert read_head(path, 5).total == 3
    spec = DatasetSpec(path=str(path))
    assert detect_kind(spec) == "text"
    assert load_for("text", spec).examples == split_documents(STORY)


def test_a_preview_of_one_long_document_shows_its_start(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("word " * 50_000, encoding="utf-8")  # one document of 250 kB, no blank line
    head = read_head(path, 8, budget=64 * 1024)
    (record,) = head.records
    assert record["text"].startswith("word word") and head.total is None


def test_a_text_column_is_raw_text_and_bad_rows_are_named(tmp_path):
    path = tmp_path / "c4.jsonl"
    rows = [{"text": "First page.", "url": "a"}, {"text": "Second page.", "url": "b"}]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    spec = DatasetSpec(path=str(path))
    assert detect_kind(spec) == "text"
    assert load_for("text", spec).examples == ["First page.", "Second page."]
    path.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"text": 3}), encoding="utf-8")
    with pytest.raises(DataError, match=r"c4.jsonl, row 2, field 'text': expected text, got a number \(3\)"):
        load_for("text", spec)
    body = tmp_path / "pages.csv"
    body.write_text("body\nA page.\n", encoding="utf-8")
    assert load_for("text", DatasetSpec(path=str(body), columns={"text": "body"})).examples == ["A page."]


def test_conversations_are_not_raw_text(tmp_path):
    path = tmp_path / "qa.json"
    path.write_text(json.dumps([{"instruction": "Hi", "output": "Hello", "text": "note"}]), encoding="utf-8")
    assert detect_kind(DatasetSpec(path=str(path))) == "conversations"


def test_every_token_is_trained_in_blocks_of_the_cutoff(tokenizer):
    documents = ["The lamp shone all night.", "A second, longer document about lamps and their light.", "End."]
    encoded = encode_texts(documents, tokenizer, cutoff_len=8)
    stream = []
    for document in documents:
        stream += tokenizer(document, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert [t for block in encoded.input_ids for t in block] == stream  # every token, EOS after each document
    assert all(len(block) == 8 for block in encoded.input_ids[:-1]) and 0 < len(encoded.input_ids[-1]) <= 8
    assert encoded.labels == encoded.input_ids  # labels are the input ids: nothing masked
    s = encoded.stats
    assert (s.rows, s.total_tokens, s.trained_tokens) == (len(encoded.input_ids), len(stream), len(stream))
    assert s.length_max == max(len(tokenizer(d, add_special_tokens=False)["input_ids"]) + 1 for d in documents)
