"""Column layouts: which field of a row plays which role, recognised from the names people give their columns, or
guessed for the Data tab's mapping form.

A layout is the `columns` mapping a dataset spec (and LLaMA-Factory's dataset_info.json) carries: a role key
(`prompt`, `response`, `system`, ...) to the name of the field holding it. Recognition is for the layout most
people have, a table with a question and an answer column under one of a few usual names, in any case.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Every role a column can play, by its key in `columns`, as the Data tab names it. The keys are LLaMA-Factory's
# (`kto_tag` is its name for the KTO label), so its dataset_info.json mappings mean the same here.
ROLES: dict[str, str] = {
    "system": "system prompt",
    "prompt": "user turn",
    "query": "user turn, second part",
    "response": "assistant reply",
    "messages": "conversation (messages)",
    "history": "earlier turns (history)",
    "chosen": "chosen reply",
    "rejected": "rejected reply",
    "kto_tag": "label (true / false)",
    "answer": "reference answer",
    "tools": "tool definitions",
}
# Optional roles filled by a default field name whatever the mapping says (alpaca's `input`, `system`, ...): a
# mapping that leaves such a field unused says so with an empty name.
OPTIONAL_DEFAULTS: dict[str, str] = {"query": "input", "system": "system", "history": "history", "tools": "tools"}

# (user turn, reply) field names that are recognised without asking, in this order; case does not matter.
PAIRS: tuple[tuple[str, str], ...] = (
    ("instruction", "output"),
    ("instruction", "response"),
    ("question", "answer"),
    ("prompt", "response"),
    ("prompt", "completion"),
    ("input", "output"),
    ("query", "response"),
)
_SYSTEM_NAMES = ("system", "system_prompt")
# A passage the question is about: it comes first in the user turn, the question after it.
_CONTEXT_NAMES = ("context",)

# Hints for the mapping form's first guess: parts of field names that suggest a role.
_HINTS: dict[str, tuple[str, ...]] = {
    "system": ("system",),
    "chosen": ("chosen", "better", "preferred"),
    "rejected": ("rejected", "worse"),
    "kto_tag": ("label", "desirable", "good"),
    "prompt": ("question", "prompt", "instruction", "input", "query", "user", "ask", "request", "frage"),
    "response": ("answer", "response", "output", "completion", "reply", "assistant", "antwort", "target"),
}


def recognise(record: dict[str, Any]) -> dict[str, str] | None:
    """The columns of a row whose fields have a known pair of names (see PAIRS), or None.

    Only what differs from the alpaca format's own names is returned, so a plain alpaca row maps to `{}`.
    """
    names = _lowercase_names(record)
    found = next(((u, r) for u, r in PAIRS if u in names and r in names), None)
    if found is None:
        return None
    user, reply = found
    mapping = {"prompt": names[user], "response": names[reply]}
    context = next((names[n] for n in _CONTEXT_NAMES if n in names), None)
    if context is not None:
        mapping = {"prompt": context, "query": names[user], "response": names[reply]}
    elif user == "instruction" and "input" in names:
        mapping["query"] = names["input"]
    system = next((names[n] for n in _SYSTEM_NAMES if n in names), None)
    if system is not None:
        mapping["system"] = system
    defaults = {"prompt": "instruction", "query": "input", "response": "output", "system": "system"}
    return {key: field for key, field in mapping.items() if defaults[key] != field}


def guess(records: Sequence[dict[str, Any]]) -> dict[str, str]:
    """A first guess at the columns of rows whose fields are not recognised: by the names of the fields, else
    by their values (a list of messages is a conversation, true/false a label, the longest text the reply and the
    next longest the user turn: replies tend to be longer than questions, and both than notes)."""
    first = records[0] if records else {}
    fields = [name for name in first if isinstance(name, str)]
    kinds = {name: _value_kind([r.get(name) for r in records if isinstance(r, dict)]) for name in fields}
    mapping: dict[str, str] = {}
    for name in fields:
        if kinds[name] == "messages" and "messages" not in mapping:
            mapping["messages"] = name
        elif kinds[name] == "bool" and "kto_tag" not in mapping:
            mapping["kto_tag"] = name
    texts = [name for name in fields if kinds[name] == "text"]
    for role in ("system", "chosen", "rejected", "prompt", "response"):
        hinted = next((n for n in texts if n not in mapping.values() and _hinted(n, role)), None)
        if hinted is not None and role not in mapping:
            mapping[role] = hinted
    if "messages" in mapping:
        return {k: v for k, v in mapping.items() if k not in ("prompt", "response")}
    free = [n for n in texts if n not in mapping.values()]
    lengths = {n: sum(len(r.get(n) or "") for r in records if isinstance(r, dict)) for n in free}
    free.sort(key=lambda n: -lengths[n])  # stable: equally long fields keep their order
    needed = ([] if {"chosen", "rejected"} <= set(mapping) else ["response"]) + ["prompt"]
    for role in needed:
        if role not in mapping and free:
            mapping[role] = free.pop(0)
    if {"chosen", "rejected"} <= set(mapping):
        mapping.pop("response", None)
    return mapping


def _hinted(name: str, role: str) -> bool:
    lowered = name.lower()
    return any(hint in lowered for hint in _HINTS[role])


def _value_kind(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if present and all(isinstance(v, list) and v and isinstance(v[0], dict) for v in present):
        return "messages"
    if present and all(isinstance(v, str) for v in present):
        return "text"
    return "other"


def _lowercase_names(record: dict[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for name in record:
        if isinstance(name, str):
            names.setdefault(name.lower(), name)  # the first of names that differ only in case
    return names


def describe(mapping: dict[str, str], roles: dict[str, str] = ROLES) -> str:
    """`field → role, ...` for people, in the order of ROLES; `roles` names them (the page's language)."""
    parts = [f"{mapping[key]} → {roles.get(key, key)}" for key in ROLES if mapping.get(key)]
    parts += [f"{field} → {key}" for key, field in mapping.items() if key not in ROLES and field]
    return ", ".join(parts)
