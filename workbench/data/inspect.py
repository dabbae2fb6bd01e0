"""What the Data tab shows about a dataset: what it holds (conversations, preference pairs, labelled replies or
prompts) and so which stages can train on it, preview rows, one example with its trained tokens, stats.

The UI process reads only the first rows (`preview`); whatever reads the whole file, `count_rows` and
`inspect_tokens` (which needs transformers, and so torch), runs in a helper process.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

from workbench.config import DatasetSpec
from workbench.data.formats import Conversation
from workbench.data.loading import LoadedDataset, LoadedExamples, detect_kind, load_for
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
}


def stages_for(kind: str) -> list[str]:
    """Titles of the stages that can train on a dataset of `kind`."""
    from workbench import stages

    return [stages.get(n).title for n in stages.names() if stages.get(n).data in SERVES[kind]]


def preview(spec: DatasetSpec) -> tuple[LoadedDataset | LoadedExamples, str, list[dict[str, str]]]:
    """Read and validate the first rows of a dataset, not the rest of the file (light: no tokenizer).

    Returns them loaded (`rows` is None unless the file ends with them: see `count_rows`), its kind, and the rows
    for a table, each cell cut to PREVIEW_CHARS.
    """
    kind = detect_kind(spec)
    loaded = load_for(kind, spec, first=PREVIEW_ROWS)
    if isinstance(loaded, LoadedDataset):
        rows = [_flatten(c) for c in loaded.conversations]
    else:
        rows = [_example_row(e) for e in loaded.examples]
    return loaded, kind, [{key: _clip(value) for key, value in row.items()} for row in rows]


def _clip(value: str) -> str:
    return value if len(value) <= PREVIEW_CHARS else value[: PREVIEW_CHARS - 1] + "…"


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


def _as_conversations(loaded: LoadedDataset | LoadedExamples) -> list[Conversation]:
    """Each example as the conversation whose tokens count against the cutoff (the chosen side of a pair)."""
    if isinstance(loaded, LoadedDataset):
        return loaded.conversations
    conversations = []
    for example in loaded.examples:
        reply = getattr(example, "chosen", None) or getattr(example, "completion", None) or example.answer or ""
        conversations.append([*example.prompt, {"role": "assistant", "content": reply}])
    return conversations


# The helper process validates a dataset (count_rows), then tokenizes it: the second call reuses what the first
# read instead of reading the whole file again, and lets it go (it can be a few GB for a file at the size limit).
_last: tuple[tuple, LoadedDataset | LoadedExamples] | None = None
# What whole reads found, by file version: the Data tab inspects a file again for a new cutoff, and Gradio
# sometimes fires the same change twice; neither should read a big file again to say the same thing.
_counted: OrderedDict[tuple, int | DataError] = OrderedDict()
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


def count_rows(spec: DatasetSpec) -> int:
    """Read and validate every row of a dataset, as training will; returns how many rows the file holds.

    Reads the whole file into memory: the UI calls it in its helper process.
    """
    version = _version(spec)
    found = _counted.get(version) if version is not None else None
    if found is None:
        try:
            found = _load_whole(spec, keep=True).rows
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


def inspect_tokens(spec: DatasetSpec, model: str, cutoff_len: int, train_on_prompt: bool) -> dict[str, Any]:
    """Encode the whole dataset as training will; returns stats and the first example split into spans."""
    from workbench import models
    from workbench.data.encoding import IGNORE_INDEX, encode_conversations

    loaded = _load_whole(spec, keep=False)
    tokenizer = models.load_tokenizer(models.resolve(model))
    encoded = encode_conversations(
        _as_conversations(loaded), tokenizer, cutoff_len=cutoff_len, train_on_prompt=train_on_prompt
    )
    spans: list[tuple[str, str]] = []
    if encoded.input_ids:
        for token, label in zip(encoded.input_ids[0], encoded.labels[0], strict=True):
            kind = "trained" if label != IGNORE_INDEX else "prompt (masked)"
            text = tokenizer.decode([token])
            if spans and spans[-1][1] == kind:
                spans[-1] = (spans[-1][0] + text, kind)
            else:
                spans.append((text, kind))
    return {"stats": encoded.stats.as_dict(), "example": spans}
