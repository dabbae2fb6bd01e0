"""What the Data tab shows about a dataset: format, preview rows, one example with its trained tokens, stats.

Tokenizing needs transformers (and so torch), so the UI calls `inspect_tokens` in a helper process.
"""

from __future__ import annotations

from typing import Any

from workbench.config import DatasetSpec
from workbench.data.loading import LoadedDataset, load_conversations

PREVIEW_ROWS = 8


def preview(spec: DatasetSpec) -> tuple[LoadedDataset, list[dict[str, str]]]:
    """Load and validate a dataset (light: no tokenizer) and flatten its first conversations for a table."""
    loaded = load_conversations(spec)
    rows = []
    for conversation in loaded.conversations[:PREVIEW_ROWS]:
        row: dict[str, str] = {}
        for message in conversation:
            key = message["role"]
            row[key] = (row[key] + "\n---\n" if key in row else "") + message["content"]
        rows.append(row)
    return loaded, rows


def inspect_tokens(spec: DatasetSpec, model: str, cutoff_len: int, train_on_prompt: bool) -> dict[str, Any]:
    """Encode the whole dataset as training will; returns stats and the first example split into spans."""
    from workbench import models
    from workbench.data.encoding import IGNORE_INDEX, encode_conversations

    loaded = load_conversations(spec)
    tokenizer = models.load_tokenizer(models.resolve(model))
    encoded = encode_conversations(
        loaded.conversations, tokenizer, cutoff_len=cutoff_len, train_on_prompt=train_on_prompt
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
