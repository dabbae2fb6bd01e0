"""What the Data tab shows about a dataset: what it holds (conversations, preference pairs, labelled replies or
prompts) and so which stages can train on it, preview rows, one example with its trained tokens, stats.

The UI process reads only the first rows (`preview`); whatever reads the whole file, `count_rows` and
`inspect_tokens` (which needs transformers, and so torch), runs in a helper process.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config import DatasetSpec
from workbench.data import layouts, placeholders
from workbench.data.formats import DEFAULT_COLUMNS, Conversation, is_pair_row
from workbench.data.loading import KIND_NAMES, LoadedDataset, LoadedExamples, detect_kind, first_rows, load_for
from workbench.data.preference import PAIR_COLUMNS
from workbench.data.prompts import PROMPT_COLUMNS
from workbench.data.text import text_field
from workbench.data.unpaired import label_column
from workbench.errors import DataError

PREVIEW_ROWS = 8
# A table cell shows this much of a value: enough to read a row, little to send to the browser.
PREVIEW_CHARS = 2000
# The kinds of data each kind of dataset serves: pairs also train KTO (split in two), conversations also give
# GRPO / RLOO their prompts (with the last reply as the reference answer).
SERVES = {
    "conversations": ("conversations", "prompts"),
    "pairs": ("pairs", "labeled"),
    "labeled": ("labeled",),
    "prompts": ("prompts",),
    "text": ("text",),
}


def stages_for(kind: str) -> list[str]:
    """Titles of the stages that can train on a dataset of `kind`."""
    from workbench import stages

    return [stages.get(n).title for n in stages.names() if stages.get(n).data in SERVES[kind]]


@dataclass
class Preview:
    """What the first rows of a dataset say, read without the rest of the file (light: no tokenizer).

    `loaded` is None when they cannot be read as the spec says (`error`: an unknown layout, a bad row); `rows`
    is the table to show, the rows as read, or the fields as they are in the file when they could not be read.
    `mapping` (role → field) is the columns in use, or a first guess when the layout is unknown.
    """

    kind: str
    loaded: LoadedDataset | LoadedExamples | None
    rows: list[dict[str, str]]
    fields: list[str]
    samples: dict[str, str]
    mapping: dict[str, str]
    placeholders: list[str]  # found in the first rows (filled in or not)
    error: DataError | None = None
    guessed: bool = False  # `mapping` is a guess, not the spec's columns


def preview(spec: DatasetSpec, *, system_prompt: str | None = None) -> Preview:
    """Read the first rows of a dataset, and validate them; raises DataError only when they cannot be read at all
    (a bad file), so the Data tab can still offer its columns when they are read wrongly."""
    records = first_rows(spec, PREVIEW_ROWS)
    fields = [str(name) for name in records[0]] if records and isinstance(records[0], dict) else []
    samples = {name: _clip(_cell(records[0].get(name)), 80) for name in fields}
    found = placeholders.find(records)
    guess = layouts.guess(records)
    first = {name: True for name in records[0]} if fields else {}  # which fields the first row has
    raw = [{name: _clip(_cell(record.get(name))) for name in fields} for record in records]
    del records  # the rows read as they are: let them go before they are read as the spec says
    kind = "conversations"
    try:
        kind = detect_kind(spec)
        loaded = load_for(kind, spec, first=PREVIEW_ROWS, system_prompt=system_prompt)
    except DataError as err:
        guessed = not spec.columns
        mapping = guess if guessed else dict(spec.columns)
        return Preview(kind, None, raw, fields, samples, mapping, found, err, guessed)
    if isinstance(loaded, LoadedDataset):
        rows = [_flatten(c) for c in loaded.conversations]
    elif kind == "text":
        rows = [{"text": document} for document in loaded.examples]
    else:
        rows = [_example_row(e) for e in loaded.examples]
    table = [{key: _clip(value) for key, value in row.items()} for row in rows]
    return Preview(kind, loaded, table, fields, samples, in_use(loaded, kind, first), found)


def in_use(loaded: LoadedDataset | LoadedExamples, kind: str, record: dict[str, Any]) -> dict[str, str]:
    """The columns a dataset was read with (role → field), for the fields its first row has."""
    if kind == "text":
        field = text_field(record, loaded.columns)
        return {"text": field} if field else {}
    explicit = {k: v for k, v in loaded.columns.items() if k != "kto_tag"}
    if kind == "pairs" or (kind == "labeled" and is_pair_row(record, loaded.columns)):
        defaults = PAIR_COLUMNS.get(loaded.format, {})  # type: ignore[call-overload]
    elif loaded.format == "prompts":
        defaults = PROMPT_COLUMNS
    else:
        defaults = DEFAULT_COLUMNS.get(loaded.format, {})  # type: ignore[call-overload]
    taken = set(explicit.values())
    mapping = {k: v for k, v in defaults.items() if v not in taken} | explicit
    if kind == "labeled" and not is_pair_row(record, loaded.columns):
        mapping["kto_tag"] = label_column(loaded.columns)
    return {key: name for key, name in mapping.items() if name and name in record}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _clip(value: str, chars: int = PREVIEW_CHARS) -> str:
    return value if len(value) <= chars else value[: chars - 1] + "…"


def _flatten(conversation: Conversation) -> dict[str, str]:
    row: dict[str, str] = {}
    for message in conversation:
        key = message["role"]
        row[key] = (row[key] + "\n---\n" if key in row else "") + message["content"]
    return row


def _example_row(example: Any) -> dict[str, str]:
    row = {f"prompt: {k}": v for k, v in _flatten(example.prompt).items()}
    fields = {"chosen": "chosen", "rejected": "rejected", "completion": "reply", "label": "label", "answer": "answer"}
    for attribute, column in fields.items():
        if hasattr(example, attribute):
            value = getattr(example, attribute)
            row[column] = "" if value is None else str(value).lower() if isinstance(value, bool) else value
    return row


def _as_conversations(items: list) -> list[Conversation]:
    """Each example as the conversation whose tokens count against the cutoff (the chosen side of a pair)."""
    if not items or isinstance(items[0], list):
        return items
    conversations = []
    for example in items:
        reply = getattr(example, "chosen", None) or getattr(example, "completion", None) or example.answer or ""
        conversations.append([*example.prompt, {"role": "assistant", "content": reply}])
    return conversations


# The helper process validates a dataset (count_rows), then tokenizes it: the second call reuses what the first
# read instead of reading the whole file again, and lets it go (it can be a few GB for a file at the size limit).
_last: tuple[tuple, LoadedDataset | LoadedExamples] | None = None
# What whole reads found, by file version: the Data tab inspects a file again for a new cutoff, and Gradio
# sometimes fires the same change twice; neither should read a big file again to say the same thing.
_counted: OrderedDict[tuple, Counted | DataError] = OrderedDict()
_COUNTED_KEPT = 32


def _version(spec: DatasetSpec) -> tuple | None:
    try:
        stat = os.stat(spec.path)
    except OSError:
        return None  # reading it will say what is wrong
    return spec.model_dump_json(), stat.st_size, stat.st_mtime_ns


def _load_whole(spec: DatasetSpec, *, keep: bool) -> LoadedDataset | LoadedExamples:
    global _last
    version = _version(spec)
    hit = _last is not None and version is not None and _last[0] == version
    loaded = _last[1] if hit else load_for(detect_kind(spec), spec)
    _last = (version, loaded) if keep and version is not None else None
    return loaded


@dataclass(frozen=True)
class Counted:
    """What reading a whole dataset found: how many rows the file holds, and the placeholders left without a
    value anywhere in it."""

    rows: int
    unfilled: list[str]


def count_rows(spec: DatasetSpec) -> Counted:
    """Read and validate every row of a dataset, as training will.

    Reads the whole file into memory: the UI calls it in its helper process.
    """
    version = _version(spec)
    found = _counted.get(version) if version is not None else None
    if found is None:
        try:
            loaded = _load_whole(spec, keep=True)
            found = Counted(loaded.rows or 0, placeholders.found_in(_items_of(loaded)))
        except DataError as err:
            # A copy without the traceback, whose frames would keep the whole file's rows alive.
            found = DataError(err.reason, file=err.file, row=err.row, field=err.field)
        if version is not None:
            _counted[version] = found
            while len(_counted) > _COUNTED_KEPT:
                _counted.popitem(last=False)
    if isinstance(found, DataError):
        raise found
    assert found is not None  # a whole file was read
    return found


def inspect_tokens(
    spec: DatasetSpec, model: str, cutoff_len: int, train_on_prompt: bool, system_prompt: str | None = None
) -> dict[str, Any]:
    """Encode the whole dataset as training will (with the run's system prompt); returns stats and the first
    example split into spans."""
    from workbench.data.loading import add_system_prompt

    loaded = add_system_prompt(_load_whole(spec, keep=False), system_prompt)
    items = loaded.conversations if isinstance(loaded, LoadedDataset) else loaded.examples
    return _encoded_report("text" if loaded.format == "text" else "conversations", items, model, cutoff_len,
                           train_on_prompt)  # fmt: skip


def _encoded_report(kind: str, items: list, model: str, cutoff_len: int, train_on_prompt: bool) -> dict[str, Any]:
    """Stats and the first example's spans of loaded items: documents (kind "text") or conversations and examples."""
    from workbench import models
    from workbench.data.encoding import IGNORE_INDEX, encode_conversations
    from workbench.data.text import encode_texts

    tokenizer = models.load_tokenizer(models.resolve(model))
    if kind == "text":
        encoded = encode_texts(items, tokenizer, cutoff_len=cutoff_len)
    else:
        encoded = encode_conversations(
            _as_conversations(items), tokenizer, cutoff_len=cutoff_len, train_on_prompt=train_on_prompt
        )
    # Each run of trained or masked tokens decoded as a whole: a character of several bytes (Chinese, emoji) can
    # span tokens, and decoding them one by one would show each half as "�".
    runs: list[tuple[list[int], str]] = []
    if encoded.input_ids:
        for token, label in zip(encoded.input_ids[0], encoded.labels[0], strict=True):
            shown = "trained" if label != IGNORE_INDEX else "prompt (masked)"
            if runs and runs[-1][1] == shown:
                runs[-1][0].append(token)
            else:
                runs.append(([token], shown))
    spans = [(tokenizer.decode(ids), shown) for ids, shown in runs]
    return {"stats": encoded.stats.as_dict(), "example": spans}


def inspect_mix(
    specs: list[DatasetSpec],
    model: str,
    cutoff_len: int,
    train_on_prompt: bool,
    system_prompt: str | None = None,
    strategy: str = "no_repeats",
    seed: int = 42,
) -> dict[str, Any]:
    """Mix several datasets as a run will (workbench/data/mixing.py) and encode the mix: its stats, its first
    example's spans, what each dataset gave (`parts`) and the kind of data it is loaded as. Reads every file."""
    from workbench.config import DataConfig
    from workbench.data.mixing import load_mixed

    data = DataConfig(datasets=specs, cutoff_len=cutoff_len, system_prompt=system_prompt, mix_strategy=strategy)
    kinds = [detect_kind(spec) for spec in specs]
    common = [kind for kind in SERVES[kinds[0]] if all(kind in SERVES[other] for other in kinds)]
    if not common:
        held = ", ".join(
            f"{KIND_NAMES[kind]} ({Path(spec.path).name})" for kind, spec in zip(kinds, specs, strict=True)
        )
        raise DataError(f"these datasets hold different kinds of data, which no stage trains on together: {held}")
    mixed = load_mixed(data, common[0], seed)
    report = _encoded_report(common[0], mixed.rows, model, cutoff_len, train_on_prompt)
    unfilled = [name for ds in mixed.loaded for name in placeholders.found_in(_items_of(ds))]
    return {
        **report,
        "parts": mixed.report(),
        "kind": kinds[0] if len(set(kinds)) == 1 else None,
        "placeholders": list(dict.fromkeys(unfilled)),
    }


def _items_of(loaded: LoadedDataset | LoadedExamples) -> list:
    return loaded.conversations if isinstance(loaded, LoadedDataset) else loaded.examples
