"""Preference pairs: a prompt, a chosen reply and a rejected one, for DPO-style training and reward models.

Three layouts are read, each row becoming a `PreferencePair`:
- plain columns: `prompt`, `chosen`, `rejected` as text (LLaMA-Factory's alpaca ranking layout, `instruction` /
  `input` / `chosen` / `rejected`, too);
- OpenAI messages: `prompt` a list of messages and `chosen` / `rejected` lists holding the reply (TRL's
  conversational layout), or `chosen` / `rejected` whole conversations that share everything but the reply;
- LLaMA-Factory's sharegpt ranking layout: `conversations` (the prompt turns) and `chosen` / `rejected` single
  `{from, value}` messages.
Each side is checked by the same converters as supervised data (formats.py), so errors name the row and field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from workbench.data.formats import (
    DEFAULT_COLUMNS,
    DEFAULT_TAGS,
    Conversation,
    check_distinct,
    convert_records,
    is_pair_row,
)
from workbench.data.reading import describe_value
from workbench.errors import DataError

PairFormat = Literal["columns", "openai", "sharegpt"]
PAIR_FORMATS: tuple[PairFormat, ...] = ("columns", "openai", "sharegpt")
# What each layout reads, by default column name; `columns` maps other names onto these keys.
PAIR_COLUMNS: dict[PairFormat, dict[str, str]] = {
    "columns": {"prompt": "prompt", "query": "input", "chosen": "chosen", "rejected": "rejected", "system": "system"},
    "openai": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected", "system": "system"},
    "sharegpt": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected", "system": "system"},
}
NEEDS = "preference data needs a prompt and two replies per row: prompt, chosen and rejected"


@dataclass(frozen=True)
class PreferencePair:
    """The prompt conversation (ending with a user turn) and the two assistant replies to it."""

    prompt: Conversation
    chosen: str
    rejected: str

    def as_trl(self) -> dict[str, list[dict[str, str]]]:
        """TRL's conversational preference row."""
        return {
            "prompt": list(self.prompt),
            "chosen": [{"role": "assistant", "content": self.chosen}],
            "rejected": [{"role": "assistant", "content": self.rejected}],
        }


def detect_pair_format(
    records: Sequence[dict[str, Any]], file: str, columns: dict[str, str] | None = None
) -> PairFormat:
    """Tell the three layouts apart by the first row."""
    columns = columns or {}
    if not records:
        raise DataError("has no rows", file=file)
    first = records[0]
    chosen_key = columns.get("chosen", "chosen")
    if not is_pair_row(first, columns):
        keys = ", ".join(first) or "(none)"
        raise DataError(f"{NEEDS} (row 1 has: {keys})", file=file, row=1)
    if columns.get("messages", "conversations") in first and isinstance(first[chosen_key], dict):
        return "sharegpt"
    if isinstance(first[chosen_key], list):
        return "openai"
    return "columns"


def convert_pairs(
    records: Sequence[dict[str, Any]],
    format: PairFormat,
    *,
    file: str,
    columns: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> list[PreferencePair]:
    """Every record as a PreferencePair; a DataError names the first bad row and field."""
    unknown = sorted(set(columns or {}) - set(PAIR_COLUMNS[format]) - {"kto_tag"})
    if unknown:
        raise DataError(
            f"the {format} preference layout has no column {unknown[0]!r}; it takes: "
            f"{', '.join(PAIR_COLUMNS[format])}",
            file=file,
            field=f"columns.{unknown[0]}",
        )
    check_distinct({k: v for k, v in (columns or {}).items() if k in PAIR_COLUMNS[format]}, file)
    names = {**PAIR_COLUMNS[format], **(columns or {})}
    return [_pair(record, index + 1, format, names, tags or {}, file) for index, record in enumerate(records)]


def _pair(
    record: dict[str, Any], row: int, format: PairFormat, names: dict[str, str], tags: dict[str, str], file: str
) -> PreferencePair:
    if not isinstance(record, dict):
        raise DataError(f"expected an object, got {describe_value(record)}", file=file, row=row)
    for key in ("chosen", "rejected"):
        if names[key] not in record:
            raise DataError(f"is missing; {NEEDS}", file=file, row=row, field=names[key])
    sides = [_side(record, side, format, names, tags, file, row) for side in ("chosen", "rejected")]
    (chosen, chosen_field), (rejected, rejected_field) = sides
    if chosen[:-1] != rejected[:-1]:
        raise DataError(
            "chosen and rejected must answer the same prompt: their conversations differ before the reply",
            file=file,
            row=row,
            field=rejected_field,
        )
    if chosen[-1]["content"].strip() == rejected[-1]["content"].strip():
        raise DataError("is the same as chosen: a pair needs two different replies", file=file, row=row,
                        field=rejected_field)  # fmt: skip
    if len(chosen) < 2 or chosen[-2]["role"] != "user":
        raise DataError("the prompt must end with a user turn", file=file, row=row, field=chosen_field)
    return PreferencePair(prompt=chosen[:-1], chosen=chosen[-1]["content"], rejected=rejected[-1]["content"])


def _side(
    record: dict[str, Any], side: str, format: PairFormat, names: dict[str, str], tags: dict[str, str], file: str,
    row: int,
) -> tuple[Conversation, str]:  # fmt: skip
    """One side as a whole conversation (prompt + reply), read by the supervised-data converter."""
    field = names[side]
    reply = record[field]
    system = {names["system"]: record[names["system"]]} if names["system"] in record else {}
    if format == "columns":
        one = {names["prompt"]: record.get(names["prompt"]), names["query"]: record.get(names["query"]), **system}
        one = {k: v for k, v in one.items() if v is not None}
        one["output"] = reply
        columns = {"prompt": names["prompt"], "query": names["query"], "response": "output", "system": names["system"]}
        if names["prompt"] not in record:
            # LLaMA-Factory's alpaca ranking rows call the prompt "instruction".
            columns["prompt"] = DEFAULT_COLUMNS["alpaca"]["prompt"]
            one[columns["prompt"]] = record.get(columns["prompt"])
            if one[columns["prompt"]] is None:
                raise DataError(f"is missing; {NEEDS}", file=file, row=row, field=names["prompt"])
        rename = {"output": field}  # the reply; the prompt's own columns keep their names
        return _convert(one, "alpaca", columns, {}, file, row, lambda f: rename.get(f, f)), field
    if format == "openai":
        if not isinstance(reply, list):
            raise DataError(f"expected a list of messages, got {describe_value(reply)}", file=file, row=row,
                            field=field)  # fmt: skip
        prompt = record.get(names["prompt"], [])
        if not isinstance(prompt, list):
            raise DataError(f"expected a list of messages, got {describe_value(prompt)}", file=file, row=row,
                            field=names["prompt"])  # fmt: skip
        one = {"messages": [*prompt, *reply], **system}
        rename = _list_fields("messages", names["prompt"], len(prompt), field)
        return _convert(one, "openai", {"system": names["system"]}, {}, file, row, rename), field
    if not isinstance(reply, dict):
        raise DataError(f"expected one {{from, value}} message, got {describe_value(reply)}", file=file, row=row,
                        field=field)  # fmt: skip
    turns = record.get(names["messages"])
    if not isinstance(turns, list):
        raise DataError(f"expected the prompt's messages, got {describe_value(turns)}", file=file, row=row,
                        field=names["messages"])  # fmt: skip
    one = {"conversations": [*turns, reply], **system}
    sharegpt_tags = {k: v for k, v in tags.items() if k in DEFAULT_TAGS}
    rename = _list_fields("conversations", names["messages"], len(turns), field, single_reply=True)
    return _convert(one, "sharegpt", {"system": names["system"]}, sharegpt_tags, file, row, rename), field


def _list_fields(joined: str, prompt: str, prompt_length: int, side: str, single_reply: bool = False):
    """Map `joined[i].x` in the combined conversation back to the prompt's or the reply's own field."""

    def rename(field: str) -> str:
        if not field.startswith(f"{joined}["):
            return side if field == joined else field
        index_text, _, rest = field[len(joined) + 1 :].partition("]")
        index = int(index_text)
        if index < prompt_length:
            return f"{prompt}[{index}]{rest}"
        return f"{side}{rest}" if single_reply else f"{side}[{index - prompt_length}]{rest}"

    return rename


def _convert(
    one: dict[str, Any],
    format: str,
    columns: dict[str, str],
    tags: dict[str, str],
    file: str,
    row: int,
    rename: Callable[[str], str],
) -> Conversation:
    try:
        (conversation,) = convert_records([one], format, file=file, columns=columns, tags=tags)
    except DataError as err:
        # The converter saw a one-row record of our making: put back the real row and the field's own name.
        raise DataError(err.reason, file=file, row=row, field=rename(err.field) if err.field else None) from None
    return conversation
