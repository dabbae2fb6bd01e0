"""AdaLoRA (Zhang et al., 2023): LoRA in SVD form whose rank budget moves, during training, to the layers
that need it most."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.methods.registry import Context, MethodSpec, register
from workbench.methods.targets import Targets, resolve, targets_field


class AdaloraParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["adalora"] = "adalora"
    init_r: int = Field(12, ge=1, le=1024, description="Rank each layer starts with.")
    target_r: int = Field(8, ge=1, le=1024, description="Average rank per layer once the budget has been allocated.")
    alpha: int = Field(32, ge=1, le=4096, description="Scaling numerator: the update is scaled by alpha / r.")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the adapter input during training.")
    tinit: int = Field(0, ge=0, description="Steps of plain training before ranks start to be pruned.")
    tfinal: int = Field(0, ge=0, description="Steps at the end with the final ranks fixed.")
    delta_t: int = Field(1, ge=1, description="Steps between two budget allocations.")
    orth_reg_weight: float = Field(0.5, ge=0.0, description="Weight of the orthogonality penalty on P and Q.")
    target_modules: Targets = targets_field()

    @model_validator(mode="after")
    def _budget_shrinks(self) -> AdaloraParams:
        if self.target_r > self.init_r:
            raise ValueError(f"target_r ({self.target_r}) must not exceed init_r ({self.init_r})")
        return self


def build_peft_config(params: AdaloraParams, model: Any, ctx: Context) -> Any:
    from peft import AdaLoraConfig, TaskType

    return AdaLoraConfig(
        task_type=TaskType.CAUSAL_LM,
        init_r=params.init_r,
        target_r=params.target_r,
        lora_alpha=params.alpha,
        lora_dropout=params.dropout,
        tinit=params.tinit,
        tfinal=params.tfinal,
        deltaT=params.delta_t,
        orth_reg_weight=params.orth_reg_weight,
        target_modules=resolve(params.target_modules),
        # A placeholder that passes PEFT's check; the real count is set when training begins (see below).
        total_step=params.tinit + params.tfinal + 1,
    )


def customize_trainer(params: AdaloraParams, trainer: Any, ctx: Context) -> None:
    from transformers import TrainerCallback

    from workbench.errors import ConfigError, FieldProblem

    model = trainer.model

    class Allocate(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            total = state.max_steps
            if params.tinit >= total - params.tfinal:
                raise ConfigError(
                    [
                        FieldProblem(
                            "method.tinit",
                            f"tinit ({params.tinit}) + tfinal ({params.tfinal}) leave no steps to allocate ranks "
                            f"in a run of {total} steps; lower them or train longer",
                        )
                    ]
                )
            model.peft_config[model.active_adapter].total_step = total

        def on_optimizer_step(self, args, state, control, **kwargs):
            # Between the optimizer step and zero_grad: the allocation scores use this step's gradients.
            model.base_model.update_and_allocate(state.global_step)

    trainer.add_callback(Allocate())
    _add_orthogonal_penalty(trainer, params.orth_reg_weight)


def _add_orthogonal_penalty(trainer: Any, weight: float) -> None:
    """AdaLoRA keeps P and Q near orthogonal with a penalty that PEFT adds to the model output's `loss`; TRL's
    trainer computes its loss from per-token log-probabilities instead, so the penalty is added here."""
    if weight <= 0:
        return
    compute_loss = trainer.compute_loss

    def with_penalty(model, inputs, return_outputs=False, num_items_in_batch=None):
        result = compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        if not model.training:
            return result
        penalty = weight * orthogonal_penalty(model)
        return (result[0] + penalty, result[1]) if return_outputs else result + penalty

    trainer.compute_loss = with_penalty


def orthogonal_penalty(model: Any) -> Any:
    """Mean over AdaLoRA's P (lora_A, r x in) and Q (lora_B, out x r) of ||P P^T - I||_F and ||Q^T Q - I||_F."""
    import torch

    terms = []
    for name, p in model.named_parameters():
        if p.requires_grad and (".lora_A." in name or ".lora_B." in name):
            covariance = p @ p.T if ".lora_A." in name else p.T @ p
            eye = torch.eye(covariance.shape[0], dtype=covariance.dtype, device=covariance.device)
            terms.append(torch.linalg.matrix_norm(covariance - eye))
    return torch.stack(terms).mean() if terms else 0.0


register(
    MethodSpec(
        name="adalora",
        title="AdaLoRA",
        family="Other PEFT",
        description="Adaptive LoRA: starts every layer at init_r and prunes singular values by importance "
        "until the average rank is target_r, so the budget goes where it helps.",
        params=AdaloraParams,
        mergeable=True,
        build_peft_config=build_peft_config,
        customize_trainer=customize_trainer,
    )
)
