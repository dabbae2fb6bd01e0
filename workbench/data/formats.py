"""Record layouts (alpaca, sharegpt, openai messages): detecting them and turning each record into a conversation.

A conversation is a list of messages `{"role": "system"|"user"|"assistant"|"tool", "content": str}`, the one form
the rest of Workbench sees. Column names and sharegpt tags follow LLaMA-Factory's dataset_info.json, with its
defaults, so its datasets load unchanged; a mapping given here overrides the defaults one key at a time. The
optional columns (system, history, tools) are used when a record has them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypedDict

from workbench.data.layouts import recognise
from workbench.data.reading import describe_value
from workbench.errors import DataError

Role = Literal["system", "user", "assistant", "tool"]
Format = Literal["alpaca", "sharegpt", "openai"]
FORMATS: tuple[Format, ...] = ("alpaca", "sharegpt", "openai")


class Message(TypedDict):
    role: Role
    content: str


Conversation = list[Message]

DEFAULT_COLUMNS: dict[Format, dict[str, str]] = {
    "alpaca": {
        "prompt": "instruction",
        "query": "input",
        "response": "output",
        "history": "history",
        "system": "system",
        "tools": "tools",
    },
    "sharegpt": {"messages": "conversations", "system": "system", "tools": "tools"},
    "openai": {"messages": "messages", "system": "system", "tools": "tools"},
}
DEFAULT_TAGS: dict[str, str] = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
OPENAI_ROLES: tuple[Role, ...] = ("system", "user", "assistant", "tool")
TOOLS_INTRO = "You have access to these tools:\n"

# LLaMA-Factory column keys SFT cannot use, and why; "kto_tag" (a KTO label) is accepted and ignored,
# since supervised fine-tuning trains on every row.
_UNSUPPORTED_COLUMNS = {
    "images": "images are not supported: Workbench trains text-only models",
    "videos": "videos are not supported: Workbench trains text-only models",
    "audios": "audio is not supported: Workbench trains text-only models",
    "chosen": "preference data (chosen/rejected) trains in a preference stage (stage.name: dpo), not in SFT",
    "rejected": "preference data (chosen/rejected) trains in a preference stage (stage.name: dpo), not in SFT",
}
_IGNORED_COLUMNS = ("kto_tag",)
# The roles each format cannot do without: a mapping may leave the others empty, not these.
_REQUIRED_COLUMNS: dict[Format, tuple[str, ...]] = {
    "alpaca": ("prompt", "response"),
    "sharegpt": ("messages",),
    "openai": ("messages",),
}
_DETECT_ROWS = 5


class UnknownLayout(DataError):
    """No known layout fits the fields of the first rows: the Data tab then asks which field plays which role.

    `fields` are the first row's field names."""

    def __init__(
        self, message: str = "", *, file: str | None = None, fields: Sequence[str] = (), field: str | None = None
    ):
        super().__init__(message, file=file, row=1, field=field)
        self.fields = list(fields)


def detect_format(
    records: Sequence[dict[str, Any]],
    file: str,
    *,
    columns: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> Format:
    """Tell alpaca, sharegpt and openai records apart by the fields of the first rows."""
    return detect_layout(records, file, columns=columns, tags=tags)[0]


def detect_layout(
    records: Sequence[dict[str, Any]],
    file: str,
    *,
    columns: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> tuple[Format, dict[str, str]]:
    """The format of the first rows and the columns to read them with: the given mapping, plus the names of a
    recognised layout (`question` / `answer`, `prompt` / `completion`, ...: layouts.PAIRS) where it needs them.

    Raises UnknownLayout when no row of the first ones fits a known layout."""
    columns, tags = columns or {}, tags or {}
    for index, record in enumerate(records[:_DETECT_ROWS]):
        if is_pair_row(record, columns):
            raise DataError(
                "this is preference data (chosen/rejected): it trains in a preference stage (stage.name: dpo); "
                "supervised fine-tuning needs conversations",
                file=file,
                row=index + 1,
            )
        found = _match(record, columns, tags)
        if found:
            return found
    keys = [str(k) for k in records[0]] if records and isinstance(records[0], dict) else []
    raise UnknownLayout(
        f"cannot tell which field is which from the first rows (row 1 has: {', '.join(keys) or '(none)'}). "
        "Known layouts: a user turn and a reply (instruction/output, question/answer, prompt/response, "
        "prompt/completion, input/output, query/response; any case, with an optional system column), "
        "sharegpt (conversations: [{from, value}, ...]), openai (messages: [{role, content}, ...]); map the "
        "columns, e.g. columns: {prompt: FIELD, response: FIELD}",
        file=file,
        fields=keys,
    )


def is_pair_row(record: dict[str, Any], columns: dict[str, str]) -> bool:
    """Whether a row holds a preference pair (a chosen and a rejected reply)."""
    return columns.get("chosen", "chosen") in record and columns.get("rejected", "rejected") in record


def _match(
    record: dict[str, Any], columns: dict[str, str], tags: dict[str, str]
) -> tuple[Format, dict[str, str]] | None:
    alpaca = {**DEFAULT_COLUMNS["alpaca"], **columns}
    if alpaca["prompt"] in record and alpaca["response"] in record:
        return "alpaca", columns
    role_tag, content_tag = tags.get("role_tag", "from"), tags.get("content_tag", "value")
    for name in [columns["messages"]] if "messages" in columns else ["conversations", "messages"]:
        turns = record.get(name)
        if isinstance(turns, list) and turns and isinstance(turns[0], dict):
            if role_tag in turns[0] and content_tag in turns[0]:
                return "sharegpt", columns
            if "role" in turns[0] and "content" in turns[0]:
                return "openai", columns
    # A mapping that names its fields is taken at its word, not second-guessed: reading says what is missing.
    if "response" in columns:
        return "alpaca", columns
    if "messages" in columns:
        return ("sharegpt" if tags else "openai"), columns
    if "prompt" in columns:
        return None  # a prompt without a reply: prompts for RL stages, not a conversation
    found = recognise(record)
    return ("alpaca", {**found, **columns}) if found is not None else None


def with_system(conversation: Conversation, system: str | None) -> Conversation:
    """The conversation starting with `system` as its system message, unless it has one of its own (a row's own
    system prompt is part of its data)."""
    if not system or (conversation and conversation[0]["role"] == "system"):
        return conversation
    return [{"role": "system", "content": system}, *conversation]


def convert_records(
    records: Sequence[dict[str, Any]],
    format: Format,
    *,
    file: str,
    columns: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> list[Conversation]:
    """Turn every record into a conversation, raising a DataError naming the first bad row and field."""
    merged_columns = _check_columns(format, columns or {}, file)
    merged_tags = _check_tags(format, tags or {}, file)
    convert = _CONVERTERS[format]
    return [
        convert(_Row(record, file, index + 1), merged_columns, merged_tags) for index, record in enumerate(records)
    ]


def _check_columns(format: Format, columns: dict[str, str], file: str) -> dict[str, str]:
    """The columns to read `format` with: the mapping given, the format's defaults for the rest. An empty name
    means the role has no field; a default never takes a field the mapping gave another role (in an
    `input` / `output` table, `input` is the user turn, not also alpaca's extra input)."""
    defaults = DEFAULT_COLUMNS[format]
    for key in columns:
        if key in _UNSUPPORTED_COLUMNS:
            raise DataError(_UNSUPPORTED_COLUMNS[key], file=file, field=f"columns.{key}")
        if key not in defaults and key not in _IGNORED_COLUMNS:
            raise DataError(
                f"the {format} format has no column {key!r}; it takes: {', '.join(defaults)}",
                file=file,
                field=f"columns.{key}",
            )
    given = {k: v for k, v in columns.items() if k in defaults}
    check_distinct(given, file)
    taken = set(given.values())
    merged = {k: given.get(k, "" if v in taken else v) for k, v in defaults.items()}
    for key in _REQUIRED_COLUMNS[format]:
        if not merged[key]:
            raise DataError(f"the {format} format needs a field for {key!r}", file=file, field=f"columns.{key}")
    return merged


def check_distinct(columns: dict[str, str], file: str) -> None:
    """Refuse a mapping that gives one field two roles, naming the second."""
    seen: dict[str, str] = {}
    for key, field in columns.items():
        if field and field in seen:
            raise DataError(
                f"the field {field!r} is already mapped to {seen[field]!r}: a field plays one role",
                file=file,
                field=f"columns.{key}",
            )
        seen[field] = key


def _check_tags(format: Format, tags: dict[str, str], file: str) -> dict[str, str]:
    if tags and format != "sharegpt":
        raise DataError(f"tags apply to the sharegpt format only, not {format}", file=file, field="tags")
    for key in tags:
        if key not in DEFAULT_TAGS:
            raise DataError(
                f"unknown tag {key!r}; the sharegpt tags are: {', '.join(DEFAULT_TAGS)}",
                file=file,
                field=f"tags.{key}",
            )
    return {**DEFAULT_TAGS, **tags}


class _Row:
    """One record being converted, with its place in the file for error messages."""

    def __init__(self, record: dict[str, Any], file: str, number: int):
        self.record, self.file, self.number = record, file, number

    def error(self, message: str, field: str | None) -> DataError:
        return DataError(message, file=self.file, row=self.number, field=field)

    def required(self, field: str, hint: str) -> Any:
        if field not in self.record:
            raise self.error(f"is missing; {hint}", field)
        return self.record[field]

    def text(self, field: str, *, required: bool, hint: str = "") -> str | None:
        # An optional role mapped to no field ("") has no value.
        value = self.required(field, hint) if required else self.record.get(field) if field else None
        if value is not None and not isinstance(value, str):
            raise self.error(f"expected text, got {describe_value(value)}", field)
        if required and not (value or "").strip():
            raise self.error("is empty", field)
        return value

    def tools(self, field: str) -> str | None:
        value = self.record.get(field)
        if isinstance(value, list | dict):
            value = json.dumps(value, ensure_ascii=False) if value else None
        elif value is not None and not isinstance(value, str):
            raise self.error(f"expected tool definitions as JSON text or a list, got {describe_value(value)}", field)
        value = (value or "").strip()
        return value if value not in ("", "[]", "{}") else None


# A turn before checking: role, raw content (checked to be text in _finish) and the field it came from.
_Turn = tuple[Role, Any, str]


def _alpaca(row: _Row, columns: dict[str, str], tags: dict[str, str]) -> Conversation:
    turns: list[_Turn] = []
    history_field = columns["history"]
    history = row.record.get(history_field)
    if history is not None:
        if not isinstance(history, list | tuple):
            raise row.error(
                f"expected a list of [instruction, response] pairs, got {describe_value(history)}", history_field
            )
        for index, pair in enumerate(history):
            field = f"{history_field}[{index}]"
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise row.error(f"expected an [instruction, response] pair, got {describe_value(pair)}", field)
            turns += [("user", pair[0], f"{field}[0]"), ("assistant", pair[1], f"{field}[1]")]

    hint = f"the alpaca format needs {columns['prompt']!r} and {columns['response']!r} (map other names with columns)"
    if _is_messages(row.required(columns["prompt"], hint)):
        turns += _prompt_messages(row, columns)
    else:
        prompt = row.text(columns["prompt"], required=False)
        query = row.text(columns["query"], required=False)
        # LLaMA-Factory's alpaca mapping: the user turn is "instruction\ninput", leaving out whichever is empty.
        user = "\n".join(part for part in (prompt, query) if part)
        if not user.strip():
            raise row.error("is empty (and so is the input): there is no request to answer", columns["prompt"])
        turns.append(("user", user, columns["prompt"]))
    if _is_messages(row.required(columns["response"], hint)):
        turns += _reply_messages(row, columns["response"])
    else:
        response = row.text(columns["response"], required=True, hint=hint)
        turns.append(("assistant", response, columns["response"]))
    system = row.text(columns["system"], required=False)
    return _finish(row, turns, system, columns["system"], row.tools(columns["tools"]), columns["response"])


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def _prompt_messages(row: _Row, columns: dict[str, str]) -> list[_Turn]:
    # TRL's conversational prompt-completion rows: the prompt is the list of messages before the reply.
    if row.text(columns["query"], required=False):
        raise row.error(f"a prompt given as messages takes no {columns['query']!r} field", columns["query"])
    roles: dict[str, Role] = {role: role for role in OPENAI_ROLES}
    return _message_list(row, columns["prompt"], "role", "content", roles)


def _reply_messages(row: _Row, field: str) -> list[_Turn]:
    # TRL's conversational completion: the reply as a list of assistant messages (tool calls and results between).
    roles: dict[str, Role] = {"assistant": "assistant", "tool": "tool"}
    turns = _message_list(row, field, "role", "content", roles)
    if turns[-1][0] != "assistant":
        raise row.error("the reply must end with an assistant message", turns[-1][2])
    return turns


def _sharegpt(row: _Row, columns: dict[str, str], tags: dict[str, str]) -> Conversation:
    roles: dict[str, Role] = {}
    for tag, role in (
        ("user_tag", "user"),
        ("assistant_tag", "assistant"),
        ("observation_tag", "tool"),
        ("function_tag", "assistant"),  # a tool call is the assistant's own output: it is trained on
        ("system_tag", "system"),
    ):
        if tags.get(tag):
            roles[tags[tag]] = role
    roles.setdefault("user", "user")
    roles.setdefault("assistant", "assistant")
    turns = _message_list(row, columns["messages"], tags["role_tag"], tags["content_tag"], roles)
    system = row.text(columns["system"], required=False)
    return _finish(row, turns, system, columns["system"], row.tools(columns["tools"]), columns["messages"])


def _openai(row: _Row, columns: dict[str, str], tags: dict[str, str]) -> Conversation:
    roles: dict[str, Role] = {role: role for role in OPENAI_ROLES}
    turns = _message_list(row, columns["messages"], "role", "content", roles)
    system = row.text(columns["system"], required=False)
    return _finish(row, turns, system, columns["system"], row.tools(columns["tools"]), columns["messages"])


def _message_list(row: _Row, field: str, role_tag: str, content_tag: str, roles: dict[str, Role]) -> list[_Turn]:
    items = row.required(field, f"expected a list of messages under {field!r} (map another name with columns)")
    if not isinstance(items, list | tuple):
        raise row.error(f"expected a list of messages, got {describe_value(items)}", field)
    if not items:
        raise row.error("has no messages", field)
    turns: list[_Turn] = []
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            raise row.error(f"expected a message object, got {describe_value(item)}", where)
        if role_tag not in item:
            raise row.error("is missing", f"{where}.{role_tag}")
        name = item[role_tag]
        role = roles.get(name) if isinstance(name, str) else None
        if role is None:
            shown = repr(name) if isinstance(name, str) else describe_value(name)
            raise row.error(f"unknown role {shown}; expected one of: {', '.join(roles)}", f"{where}.{role_tag}")
        content = item.get(content_tag)
        calls = item.get("tool_calls") if role == "assistant" else None
        if calls and (content is None or isinstance(content, str)):
            # OpenAI-style tool calls become the assistant's text, as LLaMA-Factory renders them: a JSON list.
            content = "\n".join(
                part for part in (content, _tool_calls_text(row, calls, f"{where}.tool_calls")) if part
            )
        elif content_tag not in item:
            raise row.error("is missing", f"{where}.{content_tag}")
        turns.append((role, content, f"{where}.{content_tag}"))
    return turns


def _tool_calls_text(row: _Row, calls: Any, field: str) -> str:
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        raise row.error(f"expected a list of tool call objects, got {describe_value(calls)}", field)
    return json.dumps([call.get("function", call) for call in calls], ensure_ascii=False)


def _finish(
    row: _Row, turns: list[_Turn], system: str | None, system_field: str, tools: str | None, container: str
) -> Conversation:
    # `container` is the field blamed for the conversation's overall shape (no assistant turn at all).
    # A system message inside the list wins over a system column, as in LLaMA-Factory.
    if turns and turns[0][0] == "system":
        _, system, system_field = turns.pop(0)
        if system is not None and not isinstance(system, str):
            raise row.error(f"expected text, got {describe_value(system)}", system_field)
    if tools:
        # Chat templates differ in how (and whether) they take tools; stating them in the system message
        # works with every template, so the model sees the tools it is trained to call.
        system = f"{system.strip()}\n\n{TOOLS_INTRO}{tools}" if system and system.strip() else TOOLS_INTRO + tools
    messages: Conversation = [{"role": "system", "content": system}] if system and system.strip() else []
    for role, content, field in turns:
        if not isinstance(content, str):
            raise row.error(f"expected text, got {describe_value(content)}", field)
        if role == "system":
            raise row.error("a system message can only come first in a conversation", field)
        if not content.strip():
            raise row.error(f"is empty (an empty {role} turn)", field)
        messages.append({"role": role, "content": content})

    if not any(m["role"] == "assistant" for m in messages):
        raise row.error("the conversation has no assistant turn, so there is nothing to train on", container)
    if messages[-1]["role"] != "assistant":
        raise row.error(
            f"the conversation ends with a {messages[-1]['role']} turn; it must end with an assistant turn "
            "(the reply to train on)",
            turns[-1][2],
        )
    first = turns[0]
    if first[0] == "assistant":
        raise row.error("the conversation starts with an assistant turn; a user turn must come before it", first[2])
    return messages


_CONVERTERS: dict[Format, Callable[[_Row, dict[str, str], dict[str, str]], Conversation]] = {
    "alpaca": _alpaca,
    "sharegpt": _sharegpt,
    "openai": _openai,
}
