"""Padding-free batches with per-example attention give the padded batch's loss and gradients."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from workbench.training import varlen_attention


def tiny_llama(attn: str) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=101,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        attn_implementation=attn,
    )
    return LlamaForCausalLM(config)


def loss_and_grads(model, batch):
    out = model(**{k: v for k, v in batch.items() if k != "labels"}, use_cache=False)
    logits, labels = out.logits[:, :-1], batch["labels"][:, 1:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1))
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_varlen_matches_padded_sdpa():
    generator = torch.Generator().manual_seed(1)
    examples = []
    for length in (7, 19, 3, 12):
        ids = torch.randint(0, 101, (length,), generator=generator).tolist()
        examples.append({"input_ids": ids, "labels": [-100] * 2 + ids[2:]})
    padded = DataCollatorForLanguageModeling(pad_token_id=0)(examples)
    packed = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(examples)

    ref_loss, ref_grads = loss_and_grads(tiny_llama("sdpa"), padded)
    loss, grads = loss_and_grads(tiny_llama(varlen_attention.NAME), packed)

    torch.testing.assert_close(loss, ref_loss)
    for name, grad in ref_grads.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)


def test_unpacked_inputs_fall_back_to_sdpa():
    model, reference = tiny_llama(varlen_attention.NAME), tiny_llama("sdpa")
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids, attention_mask=mask).logits, reference(ids, attention_mask=mask).logits)
