"""Rewards for online RL (GRPO, RLOO): built-in reward functions a user picks and combines, and a reward model
trained in an earlier run. No user code runs: the functions are fixed, only their settings come from the form.

Each function takes TRL's reward-function arguments (prompts, completions, completion_ids and the dataset's
columns, here `answer`) and returns one score in [0, 1] per completion.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RewardName = Literal["exact_match", "contains_answer", "format", "length"]
REWARD_HELP = {
    "exact_match": "1 when the reply equals the reference answer (ignoring case, spaces and final punctuation)",
    "contains_answer": "1 when the reference answer appears in the reply",
    "format": "1 when the whole reply matches the format regex",
    "length": "1 at the target length, falling linearly to 0 at none or twice as many tokens",
}


class RewardChoice(BaseModel):
    """Which rewards score the model's own replies: built-in functions, a reward-model run, or both."""

    model_config = ConfigDict(extra="forbid")

    rewards: list[RewardName] = Field(
        default_factory=lambda: ["exact_match"],
        description="Built-in reward functions, added up: "
        + "; ".join(f"{name}: {text}" for name, text in REWARD_HELP.items()),
    )
    format_regex: str = Field(
        r"<think>.+</think>\s*\S.*", description="What a well-formed reply looks like (for the format reward)."
    )
    target_length: int = Field(100, ge=1, le=32768, description="Reply length in tokens the length reward favours.")
    reward_model_run: str | None = Field(
        None,
        description="A finished reward-model run (stage reward) whose scores are added to the rewards.",
        json_schema_extra={"pick": "run"},
    )

    @field_validator("format_regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"not a valid regular expression: {err}") from None
        return value

    @model_validator(mode="after")
    def _some_reward(self) -> RewardChoice:
        if not self.rewards and not self.reward_model_run:
            raise ValueError("pick at least one reward function, or a reward model run")
        return self


class OnlineParams(RewardChoice):
    """GRPO's and RLOO's settings: sampling a group of replies per prompt, the KL term, and the rewards."""

    num_generations: int = Field(4, ge=2, le=64, description="Replies sampled per prompt and compared.")
    max_completion_length: int = Field(64, ge=1, le=32768, description="Longest sampled reply, in tokens.")
    temperature: float = Field(1.0, gt=0.0, le=2.0, description="Sampling temperature of the replies.")
    beta: float = Field(
        0.04, ge=0.0, le=10.0, description="KL penalty towards the starting model; 0 skips the reference pass."
    )


def reward_functions(params: RewardChoice) -> list[Callable[..., list[float]]]:
    """The chosen built-in functions, each named as TRL logs it (rewards/<name>/mean)."""
    makers = {
        "exact_match": lambda: _answer_reward(_same),
        "contains_answer": lambda: _answer_reward(_contains),
        "format": lambda: _format_reward(re.compile(params.format_regex, re.DOTALL)),
        "length": lambda: _length_reward(params.target_length),
    }
    functions = []
    for name in dict.fromkeys(params.rewards):
        function = makers[name]()
        function.__name__ = name
        functions.append(function)
    return functions


def needs_answers(params: RewardChoice) -> bool:
    return bool({"exact_match", "contains_answer"} & set(params.rewards))


def check_answers(params: RewardChoice, loaded: list[Any]) -> str | None:
    """Answer rewards need a reference answer on every row."""
    if not needs_answers(params):
        return None
    for ds in loaded:
        for row, item in enumerate(ds.examples, start=1):
            if not item.answer:
                return (
                    f"{ds.path.name}, row {row}, field 'answer': is missing; the {' and '.join(params.rewards)} "
                    "reward compares replies with a reference answer (an `answer` column, or the last reply of a "
                    "conversation)"
                )
    return None


def _text(completion: Any) -> str:
    # Conversational completions are lists of messages; the reply is the assistant's content.
    if isinstance(completion, list):
        return "".join(m.get("content", "") for m in completion if isinstance(m, dict))
    return str(completion)


def _normalise(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(".!?。 ")


def _same(reply: str, answer: str) -> bool:
    return _normalise(reply) == _normalise(answer)


def _contains(reply: str, answer: str) -> bool:
    return _normalise(answer) in _normalise(reply)


def _answer_reward(match: Callable[[str, str], bool]) -> Callable[..., list[float]]:
    def reward(completions: list[Any], answer: list[str], **_: Any) -> list[float]:
        return [float(bool(a) and match(_text(c), a)) for c, a in zip(completions, answer, strict=True)]

    return reward


def _format_reward(pattern: re.Pattern[str]) -> Callable[..., list[float]]:
    def reward(completions: list[Any], **_: Any) -> list[float]:
        return [float(pattern.fullmatch(_text(c).strip()) is not None) for c in completions]

    return reward


def _length_reward(target: int) -> Callable[..., list[float]]:
    def reward(completions: list[Any], completion_ids: list[list[int]], **_: Any) -> list[float]:
        return [max(0.0, 1.0 - abs(len(ids) - target) / target) for ids in completion_ids]

    return reward


def check_online(config: Any) -> list[str]:
    """What GRPO and RLOO refuse: a batch the groups of replies cannot fill evenly. (A reward-model run that is
    not one is refused with the other runs a run uses, in workbench/runs/chaining.py.)"""
    params, train = config.stage, config.train
    problems = []
    per_step = train.per_device_train_batch_size * train.gradient_accumulation_steps
    if per_step % params.num_generations:
        problems.append(
            f"stage.num_generations: {params.num_generations} replies per prompt must divide the "
            f"{per_step} sampled per step (train.per_device_train_batch_size × gradient_accumulation_steps)"
        )
    return problems


def reward_inputs(params: RewardChoice, reward_run: Any, dtype: Any) -> dict[str, list[Any]]:
    """The reward functions (and the reward model of `reward_run`, the chosen run's files) as TRL's online
    trainers take them."""
    functions: list[Any] = reward_functions(params)
    processing: list[Any] = [None] * len(functions)
    if reward_run is not None:
        from workbench.stages.reward import load_reward_model

        model, tokenizer = load_reward_model(reward_run, dtype)
        functions.append(model)
        processing.append(tokenizer)
    return {"reward_funcs": functions, "reward_processing_classes": processing}
