"""Supervised fine-tuning held near the base model: a KL term to the base model's next-token distributions.

Two uses, one loss. `stage.kl_to_base` (β) adds β·KL(base ‖ tuned) at every trained token to the cross-entropy on
the data: the tuned model learns the data's replies but pays for moving its distribution elsewhere, which keeps
what it knew (the names of the identity data win where the base is unsure; its general answers stay). Rows of
datasets with `answers: base_distribution` (marked per token, DISTILL_COLUMN) train on KL alone, weight 1: replay
that matches the base model's whole distribution along the data's prompts and replies, rather than one reply.

    loss = (Σ_unmarked CE + Σ_unmarked β·KL + Σ_marked KL) / trained tokens

At the optimum of one token, q(data token) = 1 / (1 + β) where the base gives it nothing: β ≤ 1 keeps the data's
token the most likely. The base distribution comes from the same weights with the adapter switched off (PEFT), or
from a frozen copy of the starting model (stages/reference.py). Evaluation keeps the plain cross-entropy, so eval
loss means what it means in every other run.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers.data.data_collator import DataCollatorMixin
from trl import SFTTrainer

from workbench.data.encoding import IGNORE_INDEX
from workbench.data.hf_dataset import DISTILL_COLUMN


class DistillCollator(DataCollatorMixin):
    """TRL's collator, with the per-token marks laid out as its input ids are: end to end (padding-free, packed)
    or one row each, padded with 0 (not distilled) to the batch's length."""

    return_tensors = "pt"

    def __init__(self, collator: Any):
        self.collator = collator

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        if DISTILL_COLUMN not in examples[0]:  # no row of this data learns distributions (a validation set)
            return self.collator(examples)
        marks = [torch.tensor(example[DISTILL_COLUMN], dtype=torch.bool) for example in examples]
        batch = self.collator([{k: v for k, v in e.items() if k != DISTILL_COLUMN} for e in examples])
        rows = [torch.cat(marks)] if getattr(self.collator, "padding_free", False) else marks
        laid = torch.zeros(batch["input_ids"].shape, dtype=torch.bool)
        for i, row in enumerate(rows):
            laid[i, : len(row)] = row
        batch[DISTILL_COLUMN] = laid
        return batch


class DistillingSftTrainer(SFTTrainer):
    """TRL's SFTTrainer with the loss above; logs `kl_to_base` and `cross_entropy` (means per trained token)."""

    def __init__(self, *args: Any, kl_to_base: float, reference: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.kl_to_base = kl_to_base
        self.reference = reference  # a frozen model, or None: the adapter is switched off
        if reference is not None:
            reference.requires_grad_(False)
            self.reference = self.accelerator.prepare_model(reference, evaluation_mode=True)
        self.data_collator = DistillCollator(self.data_collator)

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if DISTILL_COLUMN not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, DISTILL_COLUMN]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        marks = inputs.pop(DISTILL_COLUMN, None)
        if not model.training or return_outputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        if marks is None:
            marks = torch.zeros_like(labels, dtype=torch.bool)
        inputs["use_cache"] = False
        logits = model(**inputs).logits
        with torch.no_grad():
            reference = self._base_logits(model, inputs)
        length = labels.shape[1]  # prompt-learning methods put their virtual tokens first: only the real ones count
        logits, reference = logits[:, -length:], reference[:, -length:]
        targets = labels[:, 1:]
        trained = targets != IGNORE_INDEX
        log_q = F.log_softmax(logits[:, :-1][trained].float(), dim=-1)
        log_p = F.log_softmax(reference[:, :-1][trained].float(), dim=-1)
        kl = _kl(log_p, log_q)
        cross_entropy = -log_q.gather(-1, targets[trained].unsqueeze(-1)).squeeze(-1)
        distilled = marks[:, 1:][trained]
        total = torch.where(distilled, kl, cross_entropy + self.kl_to_base * kl).sum()
        count = trained.sum() if num_items_in_batch is None else num_items_in_batch
        loss = total / torch.as_tensor(count, device=total.device).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        self._log_parts(kl.detach(), cross_entropy.detach()[~distilled], inputs)
        return loss

    def _base_logits(self, model, inputs) -> torch.Tensor:
        if self.reference is not None:
            return self.reference(**inputs).logits
        with self.accelerator.unwrap_model(model).disable_adapter():
            return model(**inputs).logits

    def _log_parts(self, kl: torch.Tensor, cross_entropy: torch.Tensor, inputs) -> None:
        metrics = self._metrics["train"]
        metrics["kl_to_base"].append(_mean(self.accelerator.gather_for_metrics(kl)))
        if cross_entropy.numel():
            metrics["cross_entropy"].append(_mean(self.accelerator.gather_for_metrics(cross_entropy)))
        tokens = inputs["attention_mask"].sum() if "attention_mask" in inputs else inputs["position_ids"].numel()
        self._total_train_tokens += int(self.accelerator.gather_for_metrics(torch.as_tensor(tokens)).sum())
        metrics["num_tokens"] = [self._total_train_tokens]


def _kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) per row, from log-probabilities: what the tuned model (q) loses of the base's (p) distribution."""
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def _mean(values: torch.Tensor) -> float:
    return values.float().mean().item() if values.numel() else 0.0
