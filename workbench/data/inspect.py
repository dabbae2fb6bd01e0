"""What the Data tab shows about a dataset: what it holds (conversations, preference pairs, labelled replies or
prompts) and so which stages can train on it, preview rows, one example with its trained tokens, stats.

Tokenizing needs transformers (and so torch), so the UI calls `inspect_tokens` in a helper process.
"""

from __future__ import annotations

from typing import Any

from workbench.config import DatasetSpec
from workbench.data.formats import Conversation
from workbench.data.loading import LoadedDataset, LoadedExamples, detect_kind, load_for

PREVIEW_ROWS = 8
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
    """Load and validate a dataset (light: no tokenizer); returns it, its kind and its first rows for a table."""
    kind = detect_kind(spec)
    loaded = load_for(kind, spec)
    if isinstance(loaded, LoadedDataset):
        return loaded, kind, [_flatten(c) for c in loaded.conversations[:PREVIEW_ROWS]]
    return loaded, kind, [_example_row(e) for e in loaded.examples[:PREVIEW_ROWS]]


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


def inspect_tokens(spec: DatasetSpec, model: str, cutoff_len: int, train_on_prompt: bool) -> dict[str, Any]:
    """Encode the whole dataset as training will; returns stats and the first example split into spans."""
    from workbench import models
    from workbench.data.encoding import IGNORE_INDEX, encode_conversations

    loaded = load_for(detect_kind(spec), spec)
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
