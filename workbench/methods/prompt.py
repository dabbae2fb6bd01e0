"""The prompt family: learned virtual tokens in front of every example, the model itself untouched.

Prefix tuning (Li & Liang, 2021) learns keys and values for every layer; prompt tuning (Lester et al., 2021)
learns input embeddings only; P-tuning (Liu et al., 2021) produces them with a small prompt encoder.
Virtual tokens are prepended per example, so these methods train on padded batches.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.methods.registry import Context, MethodSpec, register

_REFUSAL = "its virtual tokens are extra inputs, not a change to the weights; load it with PEFT instead"


class _Prompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_virtual_tokens: int = Field(20, ge=1, le=512, description="Learned tokens put in front of every example.")


class PrefixParams(_Prompt):
    name: Literal["prefix"] = "prefix"
    projection: bool = Field(
        False, description="Produce the prefix with a two-layer MLP (more stable training, more parameters)."
    )
    encoder_hidden_size: int = Field(512, ge=1, le=65536, description="Hidden size of that MLP.")


class PromptTuningParams(_Prompt):
    name: Literal["prompt"] = "prompt"
    init: Literal["random", "text"] = Field(
        "text", description="Start the virtual tokens from random vectors or from the embeddings of init_text."
    )
    init_text: str = Field(
        "You are a helpful assistant. Answer the question.",
        description="Text whose token embeddings start the prompt (repeated or cut to num_virtual_tokens).",
    )

    @model_validator(mode="after")
    def _text_given(self) -> PromptTuningParams:
        if self.init == "text" and not self.init_text.strip():
            raise ValueError("init_text is empty: give a text, or set init to random")
        return self


class PtuningParams(_Prompt):
    name: Literal["ptuning"] = "ptuning"
    encoder: Literal["MLP", "LSTM"] = Field("MLP", description="The prompt encoder's network.")
    encoder_hidden_size: int = Field(128, ge=1, le=65536, description="Hidden size of the prompt encoder.")
    encoder_layers: int = Field(2, ge=1, le=8, description="Layers of the prompt encoder.")
    encoder_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout in the prompt encoder.")


def build_prefix(params: PrefixParams, model: Any, ctx: Context) -> Any:
    from peft import PrefixTuningConfig, TaskType

    return PrefixTuningConfig(
        task_type=TaskType.CAUSAL_LM,
        num_virtual_tokens=params.num_virtual_tokens,
        prefix_projection=params.projection,
        encoder_hidden_size=params.encoder_hidden_size,
    )


def build_prompt(params: PromptTuningParams, model: Any, ctx: Context) -> Any:
    from peft import PromptTuningConfig, PromptTuningInit, TaskType

    text = params.init == "text"
    return PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM,
        num_virtual_tokens=params.num_virtual_tokens,
        prompt_tuning_init=PromptTuningInit.TEXT if text else PromptTuningInit.RANDOM,
        prompt_tuning_init_text=params.init_text if text else None,
        tokenizer_name_or_path=str(ctx.model_path) if text else None,
    )


def build_ptuning(params: PtuningParams, model: Any, ctx: Context) -> Any:
    from peft import PromptEncoderConfig, PromptEncoderReparameterizationType, TaskType

    return PromptEncoderConfig(
        task_type=TaskType.CAUSAL_LM,
        num_virtual_tokens=params.num_virtual_tokens,
        encoder_reparameterization_type=PromptEncoderReparameterizationType[params.encoder],
        encoder_hidden_size=params.encoder_hidden_size,
        encoder_num_layers=params.encoder_layers,
        encoder_dropout=params.encoder_dropout,
    )


def random_init(params: PromptTuningParams) -> PromptTuningParams:
    return params.model_copy(update={"init": "random"})  # same shapes; text init needs the embeddings


register(
    MethodSpec(
        name="prefix",
        title="Prefix tuning",
        family="Prompt family",
        description="Learned key/value vectors prepended in every attention layer; the model's weights stay "
        "untouched.",
        params=PrefixParams,
        mergeable=False,
        merge_refusal=_REFUSAL,
        padding_free=False,
        build_peft_config=build_prefix,
    )
)
register(
    MethodSpec(
        name="prompt",
        title="Prompt tuning",
        family="Prompt family",
        description="Learned input embeddings (a soft prompt) in front of every example, optionally started "
        "from a text; the smallest adapters of all.",
        params=PromptTuningParams,
        mergeable=False,
        merge_refusal=_REFUSAL,
        padding_free=False,
        build_peft_config=build_prompt,
        for_counting=random_init,
    )
)
register(
    MethodSpec(
        name="ptuning",
        title="P-tuning",
        family="Prompt family",
        description="A soft prompt produced by a small prompt encoder (MLP or LSTM), which trains more stably "
        "than learning the embeddings directly.",
        params=PtuningParams,
        mergeable=False,
        merge_refusal=_REFUSAL,
        padding_free=False,
        build_peft_config=build_ptuning,
    )
)
