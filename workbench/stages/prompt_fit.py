"""Rows whose prompt alone fills the cutoff leave no room for a reply: they teach nothing and, in trainers that
keep prompts whole (TRL's experimental ORPO and CPO), they make sequences far longer than the cutoff. They are
dropped before training, with a warning, and a run left with none fails naming data.cutoff_len."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from workbench.errors import DataError
from workbench.stages.registry import TrainerParts

log = logging.getLogger(__name__)


def check_prompts_fit(before: int, after: int, cutoff: int) -> None:
    """Warn about dropped rows; refuse a run left with nothing."""
    if after == 0:
        raise DataError(
            f"every one of the {before} rows has a prompt of at least data.cutoff_len={cutoff} tokens (with the "
            "chat template), leaving no room for a reply: raise data.cutoff_len",
            field="data.cutoff_len",
        )
    if after < before:
        log.warning("%d of %d rows dropped: their prompts fill data.cutoff_len=%d tokens", before - after, before,
                    cutoff)  # fmt: skip


def drop_prompts_that_fill(parts: TrainerParts) -> TrainerParts:
    """The parts with rows whose chat-templated prompt takes all of data.cutoff_len tokens removed."""
    cutoff, tokenizer = parts.config.data.cutoff_len, parts.tokenizer

    def fits(row: dict[str, Any]) -> bool:
        encoded = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, return_dict=True)
        return len(encoded["input_ids"]) < cutoff

    train_set = parts.train_set.filter(fits)
    check_prompts_fit(len(parts.train_set), len(train_set), cutoff)
    eval_set = parts.eval_set.filter(fits) if parts.eval_set is not None else None
    return dataclasses.replace(parts, train_set=train_set, eval_set=eval_set or None)
