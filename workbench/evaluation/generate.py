"""Replies to many prompts at once: batched, left-padded, greedy unless a temperature is given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workbench.data.formats import Conversation


def replies(
    model: Any,
    tokenizer: Any,
    prompts: list[Conversation],
    *,
    batch_size: int = 8,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """One reply per prompt (a conversation ending before the reply), in the prompts' order."""
    import torch

    encoded = [
        tokenizer.apply_chat_template(p, add_generation_prompt=True, return_dict=True)["input_ids"] for p in prompts
    ]
    # Batches of similar lengths waste little on padding; the replies go back to the prompts' order.
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out: list[str] = [""] * len(encoded)
    pad = tokenizer.pad_token_id
    device = next(model.parameters()).device
    sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        longest = max(len(encoded[i]) for i in batch)
        # Left padding: every prompt ends where generation begins.
        ids = torch.tensor([[pad] * (longest - len(encoded[i])) + encoded[i] for i in batch], device=device)
        mask = torch.tensor([[0] * (longest - len(encoded[i])) + [1] * len(encoded[i]) for i in batch], device=device)
        with torch.no_grad():
            generated = model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, pad_token_id=pad, **sampling
            )
        for i, row in zip(batch, generated[:, longest:], strict=True):
            out[i] = tokenizer.decode(row, skip_special_tokens=True).strip()
        if progress is not None:
            progress(min(start + batch_size, len(order)))
    return out
