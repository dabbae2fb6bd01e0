"""The held-out test set: conversations kept out of training and saved with the run, for `eval` to read.

The test set is cut from the conversations before they are encoded (the validation split is cut from the encoded
rows, data/hf_dataset.py), so the saved file holds the conversations as written: the prompt to ask and the reply
the model should have given.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

from workbench.data.formats import Conversation
from workbench.errors import DataError


def hold_out(conversations: Sequence[Conversation], share: float, seed: int) -> tuple[list, list]:
    """(kept, held out): a random `share` (at least one) held out, the rest in their order; none when share is 0."""
    if share <= 0:
        return list(conversations), []
    count = max(1, round(len(conversations) * share))
    if count >= len(conversations):
        raise DataError(
            f"test_size={share} of {len(conversations)} conversations leaves none to train on; lower it or add rows",
            field="test_size",
        )
    held = set(random.Random(seed).sample(range(len(conversations)), count))
    kept = [c for i, c in enumerate(conversations) if i not in held]
    return kept, [c for i, c in enumerate(conversations) if i in held]


def write_conversations(conversations: Sequence[Conversation], path: Path) -> None:
    """One `{"messages": [...]}` line per conversation (OpenAI's layout, which every reader here knows)."""
    text = "".join(json.dumps({"messages": list(c)}, ensure_ascii=False) + "\n" for c in conversations)
    path.write_text(text, encoding="utf-8")
