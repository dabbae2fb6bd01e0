"""Placeholders in the data, such as `{{name}}` and `{{author}}` in LLaMA-Factory's identity set: finding them and
filling in the values a dataset spec gives (`fill: {name: ..., author: ...}`).

Values are filled into the texts the model sees (every turn, reply and reference answer) after the rows are read
and checked, so errors still name the file's own rows and fields. A placeholder with no value stays as written.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def find(value: Any) -> list[str]:
    """The placeholder names in a value (text, or lists and objects holding text), in order of first use."""
    return list(dict.fromkeys(name for text in _texts(value) for name in PLACEHOLDER.findall(text)))


def fill_text(text: str, values: dict[str, str]) -> str:
    """`text` with each placeholder that has a value replaced by it."""
    if not values or "{{" not in text:
        return text
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def fill_examples(examples: list, values: dict[str, str]) -> list:
    """Conversations (lists of messages) or examples (dataclasses holding conversations and texts), filled."""
    if not values:
        return examples
    return [_fill(example, values) for example in examples]


def _fill(example: Any, values: dict[str, str]) -> Any:
    if isinstance(example, str):
        return fill_text(example, values)
    if isinstance(example, list):
        return [{**message, "content": fill_text(message["content"], values)} for message in example]
    changes = {
        f.name: _fill(getattr(example, f.name), values)
        for f in dataclasses.fields(example)
        if isinstance(getattr(example, f.name), str | list)
    }
    return dataclasses.replace(example, **changes)


def found_in(examples: Iterable[Any]) -> list[str]:
    """The placeholder names left in loaded conversations or examples (those without a value)."""
    names: dict[str, None] = {}
    for example in examples:
        for text in _texts(dataclasses.asdict(example) if dataclasses.is_dataclass(example) else example):
            if "{{" in text:
                names.update(dict.fromkeys(PLACEHOLDER.findall(text)))
    return list(names)


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)
