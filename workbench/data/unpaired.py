"""Unpaired feedback for KTO: one reply per row, marked desirable (true) or undesirable (false).

Two sources are read:
- conversations in any supervised format (alpaca, sharegpt, openai) with a boolean label column (`label`, or
  LLaMA-Factory's `kto_tag` column mapping); the last assistant turn is the judged reply, the turns before it the
  prompt;
- preference pairs (see preference.py), each giving a desirable and an undesirable example, as the KTO paper does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.data.formats import Conversation, Format, UnknownLayout, convert_records, detect_layout
from workbench.data.preference import PreferencePair
from workbench.data.reading import describe_value
from workbench.errors import DataError

LABEL_COLUMN = "label"
NEEDS = (
    "KTO needs one reply per row with a `label` (true: a desirable reply, false: an undesirable one), "
    "or preference pairs (prompt, chosen, rejected)"
)


@dataclass(frozen=True)
class LabeledExample:
    prompt: Conversation
    completion: str
    label: bool

    def as_trl(self) -> dict[str, Any]:
        """TRL's conversational unpaired-preference row."""
        return {
            "prompt": list(self.prompt),
            "completion": [{"role": "assistant", "content": self.completion}],
            "label": self.label,
        }


def label_column(columns: dict[str, str]) -> str:
    return columns.get("kto_tag", LABEL_COLUMN)


def convert_labeled(
    records: Sequence[dict[str, Any]],
    format: Format,
    *,
    file: str,
    columns: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> list[LabeledExample]:
    """Every record as a LabeledExample; a DataError names the first bad row and field."""
    columns = columns or {}
    label = label_column(columns)
    conversations = convert_records(records, format, file=file, columns=columns, tags=tags)
    examples = []
    for row, (record, conversation) in enumerate(zip(records, conversations, strict=True), start=1):
        if label not in record:
            raise DataError(f"is missing; {NEEDS}", file=file, row=row, field=label)
        value = record[label]
        if not isinstance(value, bool):
            raise DataError(f"expected true or false, got {describe_value(value)}", file=file, row=row, field=label)
        examples.append(LabeledExample(prompt=conversation[:-1], completion=conversation[-1]["content"], label=value))
    if len({e.label for e in examples}) == 1 and len(examples) > 1:
        kind = "desirable" if examples[0].label else "undesirable"
        raise DataError(f"every row is labelled {kind}; KTO learns from both kinds of reply", file=file, field=label)
    return examples


def detect_labeled_format(
    records: Sequence[dict[str, Any]], file: str, columns: dict[str, str], tags: dict[str, str]
) -> tuple[Format, dict[str, str]]:
    """The supervised format of labelled rows and the columns to read them with (the label's too), after
    checking the first row has its label."""
    if records and isinstance(records[0], dict) and label_column(columns) not in records[0]:
        keys = ", ".join(records[0]) or "(none)"
        raise DataError(f"{NEEDS} (row 1 has: {keys})", file=file, row=1, field=label_column(columns))
    known = {k: v for k, v in columns.items() if k != "kto_tag"}
    try:
        format, found = detect_layout(records, file, columns=known, tags=tags)
    except UnknownLayout as err:
        raise UnknownLayout(f"{NEEDS}; {err.reason}", file=file, fields=err.fields) from None
    return format, {**columns, **found}


def unpair(pairs: Sequence[PreferencePair]) -> list[LabeledExample]:
    """Each pair as its chosen reply (desirable) and its rejected reply (undesirable)."""
    return [
        LabeledExample(pair.prompt, reply, label)
        for pair in pairs
        for reply, label in ((pair.chosen, True), (pair.rejected, False))
    ]
