"""A decoder's shapes, read from its config.json with json alone, and the parameter counts that follow from them.

Covers Llama-style decoders (Llama, Mistral, Qwen2/3, SmolLM, Gemma): per layer q/k/v/o attention projections,
a gated MLP (gate/up/down) and two RMSNorms; embeddings and an LM head that may share one matrix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from workbench.methods.targets import ATTENTION_MODULES, MLP_MODULES

LM_HEAD = "lm_head"


@dataclass(frozen=True)
class Architecture:
    """The shapes that decide a Llama-style decoder's parameter count, FLOPs and activation memory."""

    hidden_size: int
    num_layers: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    attention_bias: bool = False
    mlp_bias: bool = False

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    def layer_linears(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each linear layer in one decoder layer, by module name."""
        h, i = self.hidden_size, self.intermediate_size
        return {
            "q_proj": (h, self.q_dim),
            "k_proj": (h, self.kv_dim),
            "v_proj": (h, self.kv_dim),
            "o_proj": (self.q_dim, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }

    @property
    def layer_linear_params(self) -> int:
        """Weights of one layer's linear layers (the matmuls every token goes through)."""
        return sum(fan_in * fan_out for fan_in, fan_out in self.layer_linears().values())

    @property
    def lm_head_params(self) -> int:
        return self.hidden_size * self.vocab_size

    @property
    def total_params(self) -> int:
        """All parameters, a tied embedding counted once (as `model.num_parameters()` does)."""
        h = self.hidden_size
        biases = (self.q_dim + 2 * self.kv_dim + h) * self.attention_bias  # Llama puts one on o_proj too
        biases += (2 * self.intermediate_size + h) * self.mlp_bias
        layer = self.layer_linear_params + biases + 2 * h  # two RMSNorm weights
        embeddings = self.vocab_size * h * (1 if self.tie_word_embeddings else 2)
        return self.num_layers * layer + embeddings + h  # + the final norm


def read_architecture(model_dir: Path | str) -> Architecture:
    """Read `model_dir/config.json`; ValueError naming the file and the missing key if it is not a decoder we know."""
    path = Path(model_dir) / "config.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file; the estimate needs the model's config.json") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from None
    return architecture_from_config(raw, source=str(path))


def architecture_from_config(raw: dict[str, Any], source: str = "config.json") -> Architecture:
    """Build an Architecture from a parsed config.json (the text part of a multimodal one)."""
    text = raw.get("text_config") or raw

    def need(key: str) -> int:
        value = text.get(key)
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{source}: `{key}` is missing or not a positive integer (got {value!r})")
        return value

    hidden, heads = need("hidden_size"), need("num_attention_heads")
    tied = text.get("tie_word_embeddings", raw.get("tie_word_embeddings", True))
    return Architecture(
        hidden_size=hidden,
        num_layers=need("num_hidden_layers"),
        intermediate_size=need("intermediate_size"),
        num_heads=heads,
        num_kv_heads=text.get("num_key_value_heads") or heads,
        head_dim=text.get("head_dim") or hidden // heads,
        vocab_size=need("vocab_size"),
        tie_word_embeddings=bool(tied),
        attention_bias=bool(text.get("attention_bias", False)),
        mlp_bias=bool(text.get("mlp_bias", False)),
    )


def adapted_modules(target_modules: str | list[str], arch: Architecture) -> list[str]:
    """The module names an adapter lands on, as PEFT resolves `target_modules` on a Llama-style model."""
    if target_modules == "all-linear":
        return list(arch.layer_linears())  # PEFT leaves the output layer out of "all-linear"
    if target_modules == "attention":
        return list(ATTENTION_MODULES)
    if target_modules == "mlp":
        return list(MLP_MODULES)
    known = [*arch.layer_linears(), LM_HEAD]
    # PEFT matches a name against the end of each module's dotted path.
    names = [name.rsplit(".", 1)[-1] for name in target_modules]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"method.target_modules: {unknown} are not linear layers of this model; known: {known}")
    return list(dict.fromkeys(names))


def trainable_parameters(method: BaseModel, model: Architecture | Path | str) -> int:
    """Parameters a method trains on this model.

    Low-rank methods (parameters with `r` and `target_modules`, as LoRA has) add A (r x in) and B (out x r) to each
    targeted linear layer: r * (in + out) each. Raises ValueError for a method without a known formula.
    """
    arch = model if isinstance(model, Architecture) else read_architecture(model)
    r, targets = getattr(method, "r", None), getattr(method, "target_modules", None)
    if r is None or targets is None:
        name = getattr(method, "name", type(method).__name__)
        raise ValueError(f"no trainable-parameter formula for method {name!r}")
    shapes = arch.layer_linears()
    total = 0
    for module in adapted_modules(targets, arch):
        if module == LM_HEAD:
            total += r * (arch.hidden_size + arch.vocab_size)
        else:
            fan_in, fan_out = shapes[module]
            total += arch.num_layers * r * (fan_in + fan_out)
    return total
