"""Prompts for online RL (GRPO, RLOO): the model writes its own replies and reward functions score them.

Two layouts are read:
- a `prompt` column holding text or a list of OpenAI messages, with an optional reference `answer` column (the
  exact-match reward compares replies with it; map another name with `columns: {answer: solution}`);
- conversations in any supervised format: the last assistant turn becomes the reference answer and the turns
  before it the prompt, so an SFT set can be reused as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from workbench.data.formats import Conversation, UnknownLayout, convert_records, detect_layout
from workbench.data.reading import describe_value
from workbench.errors import DataError

PromptLayout = Literal["prompts", "alpaca", "sharegpt", "openai"]
PROMPT_COLUMNS = {"prompt": "prompt", "answer": "answer", "system": "system"}
NEEDS = "RL stages need prompts: a `prompt` column (text or messages), or conversations whose last reply is the answer"


@dataclass(frozen=True)
class PromptItem:
    prompt: Conversation  # ends with a user turn
    answer: str | None  # the reference answer, when the data has one

    def as_trl(self) -> dict[str, Any]:
        return {"prompt": list(self.prompt), "answer": self.answer or ""}


def detect_prompt_layout(
    records: Sequence[dict[str, Any]], file: str, columns: dict[str, str], tags: dict[str, str]
) -> tuple[PromptLayout, dict[str, str]]:
    """The layout of prompt rows and the columns to read them with: conversations (a prompt and its reply, the
    reply becoming the reference answer), else a prompt column alone."""
    if not records:
        raise DataError("has no rows", file=file)
    first = records[0]
    conversation = {k: v for k, v in columns.items() if k != "answer"}
    try:
        return detect_layout(records, file, columns=conversation, tags=tags)
    except UnknownLayout as err:
        if isinstance(first, dict) and columns.get("prompt", "prompt") in first:
            return "prompts", columns
        keys = ", ".join(first) if isinstance(first, dict) and first else "(none)"
        raise UnknownLayout(f"{NEEDS} (row 1 has: {keys})", file=file, fields=err.fields, field="prompt") from None


def convert_prompts(
    records: Sequence[dict[str, Any]],
    layout: PromptLayout,
    *,
    file: str,
    columns: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> list[PromptItem]:
    columns = columns or {}
    if layout != "prompts":
        conversations = convert_records(records, layout, file=file, columns=columns, tags=tags)
        return [PromptItem(prompt=c[:-1], answer=c[-1]["content"]) for c in conversations]
    unknown = sorted(set(columns) - set(PROMPT_COLUMNS))
    if unknown:
        raise DataError(f"the prompts layout has no column {unknown[0]!r}; it takes: {', '.join(PROMPT_COLUMNS)}",
                        file=file, field=f"columns.{unknown[0]}")  # fmt: skip
    names = {**PROMPT_COLUMNS, **columns}
    return [_item(record, row, names, file) for row, record in enumerate(records, start=1)]


def _item(record: Any, row: int, names: dict[str, str], file: str) -> PromptItem:
    if not isinstance(record, dict):
        raise DataError(f"expected an object, got {describe_value(record)}", file=file, row=row)
    field = names["prompt"]
    if field not in record:
        raise DataError(f"is missing; {NEEDS}", file=file, row=row, field=field)
    prompt = record[field]
    system = record.get(names["system"])
    if isinstance(prompt, str):
        # Read as a one-turn alpaca row, so the same checks (empty text, system) apply.
        one = {"instruction": prompt, "output": "-", **({"system": system} if system is not None else {})}
        conversation = _convert(one, "alpaca", file, row, {"instruction": field, "system": names["system"]})[:-1]
    elif isinstance(prompt, list):
        one = {"messages": [*prompt, {"role": "assistant", "content": "-"}]}
        if system is not None:
            one["system"] = system
        conversation = _convert(one, "openai", file, row, {"messages": field, "system": names["system"]})[:-1]
    else:
        raise DataError(f"expected text or a list of messages, got {describe_value(prompt)}", file=file, row=row,
                        field=field)  # fmt: skip
    if conversation[-1]["role"] != "user":
        raise DataError("the prompt must end with a user turn", file=file, row=row, field=field)
    answer = record.get(names["answer"])
    if answer is not None and not isinstance(answer, str | int | float):
        raise DataError(f"expected text, got {describe_value(answer)}", file=file, row=row, field=names["answer"])
    return PromptItem(prompt=conversation, answer=None if answer is None else str(answer))


def _convert(one: dict[str, Any], format: str, file: str, row: int, rename: dict[str, str]) -> Conversation:
    try:
        (conversation,) = convert_records([one], format, file=file)
    except DataError as err:
        field = err.field or ""
        head, sep, rest = field.partition("[")
        field = rename.get(head, head) + sep + rest
        raise DataError(err.reason, file=file, row=row, field=field or None) from None
    return conversation
