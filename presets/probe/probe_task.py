"""The probe task's data and scoring for lm-evaluation-harness (workbench_probe.yaml).

Self-contained on purpose, so the task also runs from `lm_eval --include_path presets/probe` without the
workbench installed. The workbench scores the same replies with its own reading
(workbench/evaluation/metrics.py); tests check that the two agree.
"""

from __future__ import annotations

import re
from pathlib import Path

import datasets

HERE = Path(__file__).resolve().parent


def load_probe(**_: object) -> datasets.DatasetDict:
    """general.jsonl beside this file, as the task's test split (read locally, never from a hub)."""
    return datasets.DatasetDict({"test": datasets.Dataset.from_json(str(HERE / "general.jsonl"))})


def _normalise(text: str) -> str:
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text.lower())  # 1,000 -> 1000
    return " ".join(re.sub(r"[^0-9a-z\u00c0-\u024f]+", " ", text).split())


def process_results(doc: dict, results: list[str]) -> dict[str, int]:
    reply = f" {_normalise(results[0])} "
    answers = [doc["answer"], *doc["aliases"]]
    return {"contains_answer": int(any(f" {_normalise(a)} " in reply for a in answers if _normalise(a)))}
