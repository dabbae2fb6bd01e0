"""What one training step costs in FLOPs and activation memory, from a model's shapes and a method's settings.

The formulas follow what the worker runs: a frozen base with adapters on some linear layers, padding-free
batches with attention computed per example (workbench.training.varlen_attention), and TRL's fused LM head,
which scores tokens in tiles instead of materializing the logits (trl.trainer.utils.add_fused_lm_head).
"""

from __future__ import annotations

from pydantic import BaseModel

from workbench import methods
from workbench.estimation.architecture import LM_HEAD, Architecture, adapted_modules, trainable_parameters

# TRL's fused LM head projects at most 4096 tokens x 32768 vocabulary entries at a time
# (TOKEN_CHUNK_SIZE in trl/kernels/chunked_logprob.py, _CHUNKED_LOGPROB_CHUNK_SIZE in trl/trainer/utils.py).
LM_HEAD_TILE_TOKENS = 4096
LM_HEAD_TILE_VOCAB = 32768
# Tile-sized buffers alive at once in that head's backward (the recomputed tile, its softmax and gradients):
# measured 7.7 on CPU by running its autograd function alone on 1370 tokens (peak RSS rise / tile size).
LM_HEAD_TILE_COPIES = 8


def trains_base_weights(method: BaseModel) -> bool:
    """Full and freeze tuning train the model's own weights; every other method adds weights of its own."""
    return methods.get(method.name).artifact == "model"


def flops_per_token(
    arch: Architecture, method: BaseModel, checkpointing: bool = False, trainable: int | None = None
) -> float:
    """Training FLOPs per token for the matmuls that grow with tokens (attention's L^2 part is separate).

    A matmul costs 2 FLOPs per weight per token forward. A frozen layer's backward computes only the gradient
    of its input (another 2), not of its weight: 4 per weight. TRL's tiled LM head recomputes its tiles in the
    backward: 6 per weight. Adapter weights need all three (forward, input and weight gradients): 6; a trained
    weight of the model itself adds only its weight gradient (2) to what it costs frozen.
    Gradient checkpointing runs the layers' forward once more: +2 per weight.
    `trainable` defaults to the low-rank formula (workbench.estimation.architecture.trainable_parameters).
    """
    layers = arch.num_layers * arch.layer_linear_params
    trainable = trainable_parameters(method, arch) if trainable is None else trainable
    per_weight = 6 if checkpointing else 4
    extra = 2 * trainable if trains_base_weights(method) else (per_weight + 2) * trainable
    return float(per_weight * layers + 6 * arch.lm_head_params + extra)


def attention_flops(arch: Architecture, length: float, checkpointing: bool = False) -> float:
    """Training FLOPs of attention scores for one example of `length` tokens (all layers).

    QK^T and attention x V are 2 * L^2 * q_dim each, halved by the causal mask; SDPA's fused backward recomputes
    the scores and takes ~2.5x the forward: 7 * L^2 * q_dim per layer (9 with checkpointing's second forward).
    """
    return (9.0 if checkpointing else 7.0) * length * length * arch.q_dim * arch.num_layers


def step_flops(
    arch: Architecture,
    method: BaseModel,
    tokens: float,
    examples: float,
    checkpointing: bool = False,
    trainable: int | None = None,
) -> float:
    """FLOPs of training on `tokens` real tokens in `examples` examples of equal length (padding-free)."""
    length = tokens / max(examples, 1e-9)
    return tokens * flops_per_token(arch, method, checkpointing, trainable) + examples * attention_flops(
        arch, length, checkpointing
    )


def activation_bytes_per_token_layer(
    arch: Architecture, method: BaseModel, dtype_bytes: int, checkpointing: bool = False
) -> float:
    """Bytes one token leaves saved for the backward in one decoder layer.

    Checked tensor by tensor against autograd's saved tensors on SmolLM2 + LoRA: within 3% for all-linear,
    attention-only, down_proj-only and with dropout. A frozen linear layer saves nothing (its input gradient
    needs only its weight); an adapter saves its input (for A's gradient) and A's output (for B's gradient).
    With checkpointing only each layer's input is kept, plus one layer's activations while it is rebuilt.
    Methods without a rank and target layers are approximated as rank-0 adapters on every linear layer: what
    trains reads the inputs of the linear layers (full and freeze tuning keep exactly those for the weight
    gradients; the other methods keep a similar amount).
    """
    h, q, kv, i = arch.hidden_size, arch.q_dim, arch.kv_dim, arch.intermediate_size
    # RMSNorm inputs (2h) and their 1/rms (2); RoPE'd q, k and v, the attention output and its log-sum-exp
    # (SDPA's backward); the MLP's gate and up outputs and SiLU(gate) (for the product's backward).
    floats = 2 * h + 2 + q + 2 * kv + q + arch.num_heads + 3 * i
    targets, rank = getattr(method, "target_modules", "all-linear"), getattr(method, "r", 0)
    modules = [m for m in adapted_modules(targets, arch) if m != LM_HEAD]
    shapes = arch.layer_linears()
    dropout = getattr(method, "dropout", 0.0) > 0
    if dropout:  # each adapter saves its own dropped-out input and the dropout's scaled mask
        floats += sum(2 * shapes[m][0] for m in modules)
    else:  # adapters on the same input share one saved tensor: q/k/v read norm 1's output, gate/up norm 2's
        floats += sum(shapes[m][0] for m in {_SHARED_INPUT.get(m, m): m for m in modules}.values())
    floats += rank * len(modules)
    if checkpointing:
        floats = h + floats / arch.num_layers
    return float(floats * dtype_bytes)


_SHARED_INPUT = {"k_proj": "q_proj", "v_proj": "q_proj", "up_proj": "gate_proj"}


def lm_head_bytes(arch: Architecture, tokens: float, dtype_bytes: int) -> float:
    """Peak bytes of the tiled LM head's buffers for a micro-batch of `tokens`."""
    rows = min(tokens, LM_HEAD_TILE_TOKENS)
    return LM_HEAD_TILE_COPIES * rows * min(arch.vocab_size, LM_HEAD_TILE_VOCAB) * dtype_bytes


def forward_flops(arch: Architecture, tokens: float, examples: float) -> float:
    """FLOPs of one gradient-free forward pass (a reference model's): 2 per weight per token, and attention's
    forward (2 * L^2 * q_dim per layer with the causal mask)."""
    length = tokens / max(examples, 1e-9)
    layers = arch.num_layers * arch.layer_linear_params
    return (
        tokens * 2.0 * (layers + arch.lm_head_params) + examples * 2.0 * length * length * arch.q_dim * arch.num_layers
    )
