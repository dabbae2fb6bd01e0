"""AdaLoRA's orthogonality penalty, which TRL's loss would otherwise drop, is PEFT's own."""

from __future__ import annotations

import torch
from peft import AdaLoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from workbench.methods.adalora import orthogonal_penalty


def test_penalty_equals_what_peft_adds_to_the_model_loss():
    torch.manual_seed(0)
    shape = dict(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    config = AdaLoraConfig(
        task_type="CAUSAL_LM", target_modules="all-linear", init_r=4, target_r=2, total_step=10, orth_reg_weight=1.0
    )
    model = get_peft_model(LlamaForCausalLM(LlamaConfig(**shape)), config)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    plain = model.base_model.model(input_ids=ids, labels=ids).loss.detach()
    with_penalty = model(input_ids=ids, labels=ids).loss.detach()  # AdaLoraModel.forward adds it to `loss`
    ours = orthogonal_penalty(model).detach()
    assert ours > 0
    torch.testing.assert_close(with_penalty - plain, ours, rtol=1e-5, atol=1e-6)
