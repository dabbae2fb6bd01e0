"""Replay with the base model's own answers: `data.datasets[i].answers: base`.

Mixing general instructions into a fine-tune (replay) keeps some of what the model knew, but another model's
replies (alpaca's are long, in GPT's style) pull the tuned model towards their style as they hold it back. Replaying
the same prompts with the base model's own greedy replies anchors it where it stood instead: self-synthesized
rehearsal (Huang et al., 2024). bench/forgetting.py measures the difference.

The worker writes the replies before training, for the rows the mix drew (each prompt once), in batches into the
run folder's `rehearsal.jsonl`: a run stopped while they are written, or resumed later, reuses what is there, and
the user can read what was replayed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from workbench.data.formats import Conversation

# Replies to a batch of prompts, in their order.
Replier = Callable[[list[Conversation]], list[str]]
BATCH = 8
LONGEST_REPLY = 512  # tokens; a reply is also cut to the run's cutoff_len when encoded


def prompt_of(conversation: Conversation) -> Conversation:
    """The conversation up to its last reply: what the base model answers."""
    last = max((i for i, m in enumerate(conversation) if m["role"] == "assistant"), default=len(conversation))
    return conversation[:last]


def answer_with_base(
    rows: list[Conversation],
    chosen: Sequence[Conversation],
    reply: Replier,
    saved: Path,
    progress: Callable[[int, int], bool] = lambda done, total: True,
) -> list[Conversation] | None:
    """`rows` with each row that is one of `chosen` (the same object) ending in the base model's reply to its
    prompt in place of the data's. Replies already in `saved` are reused; new ones are appended there a batch at a
    time. `progress(done, total)` is told after each batch; it returns False to stop, and then so does this (None).
    """
    picked = {id(row) for row in chosen}
    prompts = {_key(prompt_of(row)): prompt_of(row) for row in rows if id(row) in picked}
    known = read(saved)
    missing = [key for key in prompts if key not in known]
    total, done = len(prompts), len(prompts) - len(missing)
    if not progress(done, total):
        return None
    for start in range(0, len(missing), BATCH):
        batch = missing[start : start + BATCH]
        answers = reply([prompts[key] for key in batch])
        _append(saved, [{"prompt": prompts[key], "reply": answer} for key, answer in zip(batch, answers, strict=True)])
        known.update(zip(batch, answers, strict=True))
        done += len(batch)
        if not progress(done, total):
            return None
    return [
        [*prompt_of(row), {"role": "assistant", "content": known[_key(prompt_of(row))]}] if id(row) in picked else row
        for row in rows
    ]


def read(saved: Path) -> dict[str, str]:
    """The replies written so far, by prompt; a line cut short by a stopped worker is written again."""
    if not saved.is_file():
        return {}
    known = {}
    for line in saved.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        known[_key(record["prompt"])] = record["reply"]
    return known


class BaseReplier:
    """Greedy replies from the model `load_model` gives: loaded at the first batch, kept for the next ones, let go
    by `close` (training must not hold a second copy)."""

    def __init__(self, load_model: Callable[[], Any], tokenizer: Any, max_new_tokens: int):
        self.load_model, self.tokenizer = load_model, tokenizer
        self.max_new_tokens = min(max_new_tokens, LONGEST_REPLY)
        self.model: Any = None

    def __call__(self, prompts: list[Conversation]) -> list[str]:
        from workbench.evaluation.generate import replies

        if self.model is None:
            self.model = self.load_model().eval()
        return replies(self.model, self.tokenizer, prompts, batch_size=BATCH, max_new_tokens=self.max_new_tokens)

    def close(self) -> None:
        if self.model is not None:
            import torch

            self.model = None
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


def _append(saved: Path, records: list[dict]) -> None:
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    with saved.open("a+b") as out:
        out.seek(0, 2)
        if out.tell():  # a line cut short by a killed worker ends here: the new ones start on a line of their own
            out.seek(-1, 2)
            if out.read(1) != b"\n":
                lines = "\n" + lines
        out.write(lines.encode("utf-8"))


def _key(prompt: Conversation) -> str:
    return json.dumps(prompt, ensure_ascii=False, sort_keys=True)
