"""Our bottleneck adapter module: identity at the start, trains, saves only its weights, loads back exactly."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from workbench.adapters import bottleneck
from workbench.adapters.bottleneck import BottleneckConfig

SHAPE = dict(
    vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2,
)  # fmt: skip
IDS = torch.tensor([[1, 5, 9, 14, 2, 7]])


def tiny(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**SHAPE)).eval()


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits


@pytest.mark.parametrize("positions", ["both", "attention", "mlp"])
def test_a_fresh_adapter_is_the_identity_and_sits_where_asked(positions):
    model = tiny()
    before = logits(model)
    added = bottleneck.add_bottlenecks(model, BottleneckConfig(size=8, positions=positions))
    assert len(added) == 2 * (2 if positions == "both" else 1)
    torch.testing.assert_close(logits(model), before, rtol=0, atol=0)
    names = list(bottleneck.adapter_state_dict(model))
    assert any(".self_attn.bottleneck." in n for n in names) == (positions != "mlp")
    assert any(".mlp.bottleneck." in n for n in names) == (positions != "attention")


def test_trained_adapter_saves_its_weights_only_and_reloads_exactly(tmp_path):
    model = tiny()
    base = logits(model)
    model.requires_grad_(False)
    for adapter in bottleneck.add_bottlenecks(model, BottleneckConfig(size=8, nonlinearity="gelu")):
        adapter.requires_grad_(True)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        model(input_ids=IDS, labels=IDS).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    tuned = logits(model)
    assert not torch.allclose(tuned, base)

    bottleneck.save(model, tmp_path, BottleneckConfig(size=8, nonlinearity="gelu", base_model_name_or_path="tiny"))
    saved = json.loads((tmp_path / bottleneck.CONFIG_FILE).read_text())
    assert saved["size"] == 8 and saved["nonlinearity"] == "gelu" and saved["base_model_name_or_path"] == "tiny"
    from safetensors.torch import load_file

    assert all(".bottleneck." in key for key in load_file(str(tmp_path / bottleneck.WEIGHTS_FILE)))

    reloaded = bottleneck.load(tiny(), tmp_path)  # a fresh copy of the same base
    torch.testing.assert_close(logits(reloaded), tuned, rtol=0, atol=1e-6)
    with bottleneck.disabled(reloaded):  # the base model's answers, from the same copy
        torch.testing.assert_close(logits(reloaded), base, rtol=0, atol=1e-6)
    torch.testing.assert_close(logits(reloaded), tuned, rtol=0, atol=1e-6)


def test_adapter_for_another_shape_is_refused_naming_the_folder(tmp_path):
    model = tiny()
    bottleneck.add_bottlenecks(model, BottleneckConfig(size=8))
    bottleneck.save(model, tmp_path, BottleneckConfig(size=8))
    other = LlamaForCausalLM(LlamaConfig(**{**SHAPE, "num_hidden_layers": 3}))
    with pytest.raises(ValueError, match=str(tmp_path)):
        bottleneck.load(other, tmp_path)
