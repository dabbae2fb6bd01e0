"""Bottleneck adapters (Houlsby et al., 2019) for Llama-style decoders.

Each adapter is a down-projection, a nonlinearity and an up-projection added to its input (a residual). The
up-projection starts at zero, so a fresh adapter is the identity and training starts from the base model.
One sits after each attention block's output projection and one after each MLP, before the residual
connection of the block, as in the paper.

The adapters are submodules of the blocks they follow (`...self_attn.bottleneck`, `...mlp.bottleneck`), called
by forward hooks, so the base model's own weight names are unchanged. A saved adapter is a folder holding
`bottleneck_config.json` and `bottleneck_adapter.safetensors` (the adapter weights only).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

CONFIG_FILE = "bottleneck_config.json"
WEIGHTS_FILE = "bottleneck_adapter.safetensors"
ATTRIBUTE = "bottleneck"
_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


@dataclass(frozen=True)
class BottleneckConfig:
    size: int = 64
    nonlinearity: Literal["relu", "gelu", "silu", "tanh"] = "relu"
    positions: Literal["both", "attention", "mlp"] = "both"
    base_model_name_or_path: str | None = None
    adapter_type: str = "bottleneck"


class Bottleneck(nn.Module):
    """x + up(act(down(x))), computed in the adapter's own (fp32) precision and returned in x's."""

    def __init__(self, hidden_size: int, size: int, nonlinearity: str, device: torch.device | None = None):
        super().__init__()
        self.down = nn.Linear(hidden_size, size, device=device)
        self.act = _ACTIVATIONS[nonlinearity]()
        self.up = nn.Linear(size, hidden_size, device=device)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.enabled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        h = x.to(self.down.weight.dtype)
        return x + self.up(self.act(self.down(h))).to(x.dtype)


def _apply(adapter: Bottleneck):
    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        return adapter(output)

    return hook


def add_bottlenecks(model: nn.Module, config: BottleneckConfig) -> list[Bottleneck]:
    """Insert fresh adapters into every decoder layer of `model`; returns them."""
    added = []
    for layer in model.get_decoder().layers:
        places = []
        if config.positions in ("both", "attention"):
            places.append((layer.self_attn, layer.self_attn.o_proj))  # the attention block returns a tuple
        if config.positions in ("both", "mlp"):
            places.append((layer.mlp, layer.mlp))
        for owner, hooked in places:
            weight = next(hooked.parameters())
            adapter = Bottleneck(model.config.hidden_size, config.size, config.nonlinearity, device=weight.device)
            owner.add_module(ATTRIBUTE, adapter)
            hooked.register_forward_hook(_apply(adapter))
            added.append(adapter)
    return added


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous() for k, v in model.state_dict().items() if f".{ATTRIBUTE}." in k}


def save(model: nn.Module, folder: Path, config: BottleneckConfig) -> None:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(adapter_state_dict(model), str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    (folder / CONFIG_FILE).write_text(json.dumps(asdict(config), indent=2) + "\n", encoding="utf-8")


def read_config(folder: Path) -> BottleneckConfig:
    raw = json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8"))
    known = BottleneckConfig.__dataclass_fields__
    return BottleneckConfig(**{k: v for k, v in raw.items() if k in known})


def load(model: nn.Module, folder: Path) -> nn.Module:
    """Add the adapters saved in `folder` to `model` (a freshly loaded base); raises if they do not match it."""
    from safetensors.torch import load_file

    add_bottlenecks(model, read_config(folder))
    weights = load_file(str(Path(folder) / WEIGHTS_FILE), device=str(next(model.parameters()).device))
    expected = set(adapter_state_dict(model))
    if set(weights) != expected:
        missing, extra = sorted(expected - set(weights)), sorted(set(weights) - expected)
        raise ValueError(f"{folder}: adapter weights do not fit this model (missing {missing[:3]}, extra {extra[:3]})")
    model.load_state_dict(weights, strict=False)
    return model


@contextmanager
def disabled(model: nn.Module) -> Iterator[None]:
    """Answer as the base model: every adapter passes its input through."""
    adapters = [m for m in model.modules() if isinstance(m, Bottleneck)]
    for adapter in adapters:
        adapter.enabled = False
    try:
        yield
    finally:
        for adapter in adapters:
            adapter.enabled = True
