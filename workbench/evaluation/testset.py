"""The examples an evaluation asks: each a prompt (the conversation up to the last reply) and that reply as the
reference. Read from the run's held-out test set or from any dataset file the workbench reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench.data.formats import Conversation, with_system
from workbench.errors import DataError


@dataclass(frozen=True)
class Example:
    prompt: Conversation
    reference: str

    @property
    def question(self) -> str:
        """The last user turn, for tables."""
        return next((m["content"] for m in reversed(self.prompt) if m["role"] == "user"), "")


def from_conversations(conversations: list[Conversation], file: str) -> list[Example]:
    """The last assistant turn of each conversation is its reference; what comes before it is the prompt."""
    examples = []
    for row, conversation in enumerate(conversations, start=1):
        last = max((i for i, m in enumerate(conversation) if m["role"] == "assistant"), default=None)
        if last is None:
            raise DataError("has no assistant reply to compare with", file=file, row=row)
        examples.append(Example(prompt=list(conversation[:last]), reference=conversation[last]["content"]))
    return examples


def load(path: Path, system_prompt: str | None = None, limit: int | None = None) -> list[Example]:
    """A dataset file (any layout the Data tab reads) as examples, each prompt under `system_prompt` unless it has
    a system message of its own."""
    from workbench.config import DatasetSpec
    from workbench.data.loading import load_conversations

    if not Path(path).is_file():
        raise DataError("no such file", file=str(path))
    loaded = load_conversations(DatasetSpec(path=str(path)), first=limit)
    conversations = [with_system(c, system_prompt) for c in loaded.conversations]
    return from_conversations(conversations, file=Path(path).name)[:limit]
