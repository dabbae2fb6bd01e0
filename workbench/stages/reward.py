"""Reward modeling with TRL's RewardTrainer: a model that scores a reply (one number per sequence), trained so the
chosen reply of each pair scores above the rejected one (Bradley-Terry). Its run then serves GRPO / RLOO as a
reward (SFT -> reward model -> RL, the RLHF pipeline)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.stages.prompt_fit import drop_prompts_that_fill
from workbench.stages.registry import StageSpec, TrainerParts, refusing, register

# Methods that cannot train the new score head: they only touch the layers they add or pick themselves.
_NEEDS_SCORE_HEAD = "; a reward model needs a method that trains its score head"
_NO_SCORE_HEAD = {
    "freeze": "freeze tuning trains chosen layers only and would leave the new score head untrained"
    + _NEEDS_SCORE_HEAD,
    "bottleneck": "bottleneck adapters would leave the new score head untrained" + _NEEDS_SCORE_HEAD,
    "llama_adapter": "LLaMA-Adapter works on language-model heads only" + _NEEDS_SCORE_HEAD,
}


class RewardParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["reward"] = "reward"
    center_rewards_coefficient: float | None = Field(
        None, ge=0.0, le=1.0, description="Pulls scores towards zero mean (e.g. 0.01), so rewards stay comparable."
    )


def build_trainer(params: RewardParams, parts: TrainerParts) -> Any:
    from trl import RewardConfig, RewardTrainer

    parts = drop_prompts_that_fill(parts)  # cut at the cutoff, both replies would be the same prompt
    args = RewardConfig(
        **parts.arguments(
            max_length=parts.config.data.cutoff_len, center_rewards_coefficient=params.center_rewards_coefficient
        )
    )
    if parts.peft_config is not None:
        # Methods build their PEFT config for causal LMs; a sequence classifier also trains (and saves) its head.
        parts.peft_config.task_type = "SEQ_CLS"
    trainer = RewardTrainer(args=args, **parts.trainer_inputs())
    _score_head_in_compute_dtype(trainer.model)
    return trainer


def _score_head_in_compute_dtype(model: Any) -> None:
    """On a quantized base TRL turns every trainable weight to bf16 (as QLoRA's paper does for LoRA weights);
    LoRA layers cast their inputs, but the score head is a plain linear layer that meets hidden states in the
    compute dtype: give it that dtype back."""
    dtype = model.get_input_embeddings().weight.dtype
    for name, param in model.named_parameters():
        if param.requires_grad and "modules_to_save" in name and param.dtype != dtype:
            param.data = param.data.to(dtype)


def load_reward_model(files: Any, dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) of a finished reward-model run (its workbench.runs.files.RunFiles), ready to score; a
    PEFT adapter is merged in."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from workbench import models

    config = files.read_config()
    ref = models.resolve(config.model.name_or_path)
    tokenizer = models.load_tokenizer(ref, config.model.chat_template)
    dtype = dtype or torch.float32
    if files.artifact_kind() == "model":
        model = AutoModelForSequenceClassification.from_pretrained(files.adapter, num_labels=1, dtype=dtype)
    else:
        from peft import PeftModel

        base = AutoModelForSequenceClassification.from_pretrained(ref.path, num_labels=1, dtype=dtype)
        base.config.pad_token_id = tokenizer.pad_token_id
        model = PeftModel.from_pretrained(base, files.adapter).merge_and_unload()
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config._name_or_path = "reward_model"  # TRL logs its scores as rewards/<this name>/mean
    return model.eval(), tokenizer


register(
    StageSpec(
        name="reward",
        title="Reward model",
        description="Train a model that scores replies, from preference pairs (chosen above rejected); use it as "
        "the reward of a GRPO or RLOO run (RLHF).",
        params=RewardParams,
        data="pairs",
        build_trainer=build_trainer,
        metrics=("accuracy", "margin"),
        head="reward",
        sequences=2,
        check=refusing(_NO_SCORE_HEAD),
    )
)
