"""Ratings from the Chat tab's side-by-side mode, kept as a preference dataset (DPO, KTO, ORPO, reward models).

Each rating is one line of `chat-ratings.jsonl` in the collected-datasets folder, in TRL's conversational
preference layout (prompt messages, chosen and rejected replies), which the data loaders read as pairs. A line
is appended with one write, so a crash never leaves half a rating behind.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from workbench import home
from workbench.errors import WorkbenchError

RATINGS_FILE = "chat-ratings.jsonl"


def ratings_path() -> Path:
    return home.collected_dir() / RATINGS_FILE


def save_rating(prompt: list[dict[str, str]], chosen: str, rejected: str, *, run: str | None, base: str) -> int:
    """Append one preference pair; returns how many the file now holds."""
    if not prompt or prompt[-1].get("role") != "user":
        raise WorkbenchError("nothing to rate yet: ask something first")
    if not chosen.strip() or not rejected.strip():
        raise WorkbenchError("both replies must be finished before one can be preferred")
    if chosen.strip() == rejected.strip():
        raise WorkbenchError("the two replies are the same, so there is no preference to learn from")
    row: dict[str, Any] = {
        "prompt": [{"role": m["role"], "content": m["content"]} for m in prompt],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "base": base,
        "run": run,
        "rated_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    line = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(ratings_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return count()


def count() -> int:
    path = ratings_path()
    if not path.exists():
        return 0
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def collected_datasets() -> list[Path]:
    return sorted(p for p in home.collected_dir().iterdir() if p.suffix in (".json", ".jsonl", ".csv", ".parquet"))
