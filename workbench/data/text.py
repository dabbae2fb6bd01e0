"""Raw text for continued pre-training (stage `pt`): documents, and their tokens packed into blocks.

A document is a `.txt` file's block of lines between blank lines (as `datasets`' text loader reads paragraphs), or
the `text` column of a .json, .jsonl, .csv or .parquet row (`columns: {text: body}` names another column;
LLaMA-Factory's pre-training entries name it as `prompt`). Every token is trained: each document is tokenized, the
end-of-text token (the tokenizer's EOS) is put after it, all of them are laid end to end and cut into blocks of
`cutoff_len` tokens, as LLaMA-Factory's pt stage and Unsloth's continued pre-training do; the last, shorter block is
kept, so no token is left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from workbench.data.encoding import EncodedData
from workbench.data.reading import describe_value
from workbench.data.stats import compute_stats
from workbench.errors import DataError

TEXT_COLUMN = "text"
# A line holding nothing but spaces ends a document, however many follow.
_BLANK_LINES = re.compile(r"\n[ \t\f\v]*\n\s*")
_CHUNK = 1024  # documents per tokenizer call


def split_documents(text: str) -> list[str]:
    """The documents of a .txt file's text: blocks of lines between blank lines, their outer whitespace removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [block.strip() for block in _BLANK_LINES.split(text) if block.strip()]


def text_field(record: dict[str, Any], columns: dict[str, str]) -> str | None:
    """The field of a row that holds its text: `columns["text"]`, else `text`, else LLaMA-Factory's `prompt`
    mapping; None when the row has none of them."""
    for name in (columns.get("text"), TEXT_COLUMN, columns.get("prompt")):
        if name and name in record:
            return name
    return None


def convert_texts(records: Sequence[Any], file: str, columns: dict[str, str]) -> list[str]:
    """Each row's text; a DataError names the file, row and field of a row without one."""
    wanted = columns.get("text") or TEXT_COLUMN
    documents = []
    for row, record in enumerate(records, start=1):
        field = text_field(record, columns) if isinstance(record, dict) else None
        if field is None:
            raise DataError("is missing; raw text needs a text column", file=file, row=row, field=wanted)
        value = record[field]
        if not isinstance(value, str):
            raise DataError(f"expected text, got {describe_value(value)}", file=file, row=row, field=field)
        if not value.strip():
            raise DataError("is empty", file=file, row=row, field=field)
        documents.append(value)
    return documents


def encode_texts(documents: Sequence[str], tokenizer: Any, *, cutoff_len: int) -> EncodedData:
    """Documents as blocks of `cutoff_len` tokens whose labels are their input ids (every token trained); the
    stats count blocks as rows and describe the documents' lengths (EOS included)."""
    if cutoff_len < 1:
        raise ValueError(f"cutoff_len must be at least 1, got {cutoff_len}")
    eos = tokenizer.eos_token_id
    if eos is None:
        raise DataError("the tokenizer has no end-of-text token (EOS) to put between documents")
    stream: list[int] = []
    lengths: list[int] = []
    for start in range(0, len(documents), _CHUNK):
        pieces = tokenizer(list(documents[start : start + _CHUNK]), add_special_tokens=False)["input_ids"]
        for ids in pieces:
            stream.extend(ids)
            stream.append(eos)
            lengths.append(len(ids) + 1)
    blocks = [stream[i : i + cutoff_len] for i in range(0, len(stream), cutoff_len)]
    stats = compute_stats(
        lengths,
        rows=len(blocks),
        truncated_rows=0,
        dropped_rows=0,
        cutoff_len=cutoff_len,
        total_tokens=len(stream),
        trained_tokens=len(stream),
    )
    return EncodedData(input_ids=blocks, labels=[list(block) for block in blocks], stats=stats)
